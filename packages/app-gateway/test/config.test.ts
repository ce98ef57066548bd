import { describe, expect, it } from 'vitest';
import { configToEnv, loadConfig, loadControlConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const ID = '8f7c2a3e-1b4d-4c6e-9a0f-2d3b4c5d6e7f';

describe('loadConfig', () => {
  it('applies upstream defaults', () => {
    expect(loadConfig({ GATEWAY_ID: ID, GATEWAY_TOKEN: 't' })).toEqual({
      gatewayId: ID,
      gatewayToken: 't',
      ganymedeUrl: 'http://127.0.0.1:4000',
      port: 4100,
      host: '127.0.0.1',
      reloadMarker: '/tmp/gateway-reloading',
      shutdownTimeoutMs: 3000,
      restartGraceSeconds: undefined,
      runDir: `/tmp/gateway-${ID}`,
      logLevel: 'info',
      bootTimeoutMs: 60_000,
      requestTimeoutMs: 5_000,
      listenFd: undefined,
      drainTimeoutMs: 30_000,
      handoverTimeoutMs: 30_000,
      autosaveMs: 5_000,
    });
  });

  it('lets flags override the environment', () => {
    const config = loadConfig(
      { GATEWAY_ID: ID, GATEWAY_TOKEN: 't', GATEWAY_PORT: '4200', GATEWAY_RESTART_GRACE_SECONDS: '30' },
      { port: '0', 'ganymede-url': 'http://ganymede:4000/', 'run-dir': '/run/gw' },
    );
    expect(config).toMatchObject({ port: 0, ganymedeUrl: 'http://ganymede:4000', runDir: '/run/gw', restartGraceSeconds: 30 });
  });

  it('names every invalid setting in one ConfigError', () => {
    const load = () => loadConfig({ GATEWAY_ID: 'nope', GATEWAY_PORT: '70000', GATEWAY_SHUTDOWN_TIMEOUT_MS: 'soon' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/GATEWAY_ID.*GATEWAY_TOKEN.*GATEWAY_PORT.*GATEWAY_SHUTDOWN_TIMEOUT_MS/);
  });

  it('round-trips through configToEnv (how the supervisor hands flags to its child)', () => {
    const config = loadConfig({ GATEWAY_ID: ID, GATEWAY_TOKEN: 't' }, { port: '4321', 'restart-grace-seconds': '5' });
    expect(loadConfig(configToEnv(config))).toEqual(config);
  });
});

describe('loadControlConfig', () => {
  it('needs no token, and the id only for the default run dir', () => {
    expect(loadControlConfig({}, { 'run-dir': '/run/gw' })).toMatchObject({ runDir: '/run/gw', reloadMarker: '/tmp/gateway-reloading' });
    expect(loadControlConfig({ GATEWAY_ID: ID })).toMatchObject({ runDir: `/tmp/gateway-${ID}` });
    expect(() => loadControlConfig({})).toThrow(ConfigError);
  });
});
