/**
 * gateway run                                   one gateway process, in the foreground
 * gateway supervise                             keep a gateway running (restart on exit 75 or crash)
 * gateway reload [--reason reload|deploy|restart]   restart the supervised gateway, keeping its allocation
 * gateway stop [--reason stop|idle|decommission]    stop the supervised gateway for good, ending its allocation
 *
 * Flags mirror the environment: --id GATEWAY_ID, --token GATEWAY_TOKEN, --ganymede-url GANYMEDE_URL,
 * --port GATEWAY_PORT, --host GATEWAY_HOST, --reload-marker GATEWAY_RELOAD_MARKER, --run-dir GATEWAY_RUN_DIR,
 * --shutdown-timeout-ms, --restart-grace-seconds, --log-level, --boot-timeout-ms, --request-timeout-ms, --listen-fd,
 * --drain-timeout-ms, --handover-timeout-ms.
 * Exit codes: 0 stopped, 1 failure, 2 bad configuration or usage, 75 shut down for a restart.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RESTART_REASONS, STOP_REASONS } from '@ganymede/contracts';
import { configToEnv, type Flags, type GatewayConfig, loadConfig, loadControlConfig, SETTINGS } from './config.js';
import { ConfigError, EXIT_CODES, GatewayError, UsageError } from './errors.js';
import { Gateway } from './gateway.js';
import { createLogger } from './logger.js';
import { isAlive, readPid, SUPERVISOR_PID_FILE } from './pid-file.js';
import { type FromChild, isToChild, SUCCESSOR_ENV, type ToChild } from './handover-protocol.js';
import { resolveShutdownReason, SHUTDOWN_SIGNALS, type ShutdownRequest, STOP_REASON_FILE } from './shutdown-reason.js';
import { onSignals } from './signals.js';
import { Supervisor } from './supervisor.js';

const CLI_PATH = fileURLToPath(import.meta.url);

const USAGE = `usage: gateway <run|supervise|reload|stop> [flags]
  run                  one gateway process in the foreground
  supervise            run the gateway under a supervisor that owns its socket (hot restarts, restarts on a crash)
  reload [--reason reload|deploy|restart]     restart the supervised gateway, keeping its allocation
  stop [--reason stop|idle|decommission]      stop the supervised gateway, ending its allocation
flags (each overrides its environment variable):
${Object.values(SETTINGS)
  .map(({ env, flag }) => `  --${flag.padEnd(24)}${env}`)
  .join('\n')}`;

function parse(argv: string[]) {
  const options = Object.fromEntries(Object.values(SETTINGS).map(({ flag }) => [flag, { type: 'string' as const }]));
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...options, reason: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  const [command, ...extra] = positionals;
  if (values.help) return { command: 'help', flags: {}, reason: undefined };
  if (!command) throw new UsageError('missing command');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const { reason, help: _help, ...flags } = values as Record<string, string | boolean | undefined>;
  return { command, flags: flags as Flags, reason: reason as string | undefined };
}

/** `gateway run`: one gateway process until a signal; exits 0 (stop reason), 75 (restart reason) or 1 (boot failed). */
async function run(config: GatewayConfig): Promise<never> {
  const logger = createLogger({ level: config.logLevel, role: 'gateway', base: { gateway_id: config.gatewayId } });
  let exitCode: number | undefined;
  // Another process is this gateway now: stop for good, without a /gateway/stop (nothing is held any more).
  const gateway = new Gateway({
    config,
    logger,
    onSuperseded: () => exitCode === undefined && shutdown({ kind: 'stop', reason: 'stop' }, 'superseded'),
    successor: process.env[SUCCESSOR_ENV] === '1',
  });

  const exit = (code: number, event: string): never => {
    logger.info({ event, exit_code: code }, `exiting with ${code}`);
    process.exit(code);
  };
  const shutdown = (request: ShutdownRequest, trigger: string) => {
    exitCode = request.kind === 'restart' ? EXIT_CODES.restart : EXIT_CODES.stopped;
    logger.info(
      { event: 'shutdown_signal', trigger, kind: request.kind, reason: request.reason },
      `${trigger}: ${request.kind} (${request.reason})`,
    );
    // The hard deadline: whatever Ganymede or open connections do, exit in time.
    setTimeout(() => exit(exitCode!, 'shutdown_timeout'), config.shutdownTimeoutMs).unref();
    void gateway.shutdown(request).then((code) => exit(code, 'exit'));
  };

  onSignals(SHUTDOWN_SIGNALS, (signal) => {
    if (exitCode !== undefined) return exit(exitCode, 'forced_exit'); // a second signal: no more waiting
    const decision = resolveShutdownReason(signal, { reloadMarker: config.reloadMarker, runDir: config.runDir });
    for (const warning of decision.warnings) logger.warn({ event: 'marker_warning' }, warning);
    shutdown({ kind: decision.kind, reason: decision.reason } as ShutdownRequest, signal);
  });
  // Under a supervisor: if it dies, don't run on orphaned; shut down keeping the allocation for the next start.
  const supervisorGone = () => exitCode === undefined && shutdown({ kind: 'restart', reason: 'restart' }, 'supervisor_gone');
  if (process.send) process.once('disconnect', supervisorGone);
  // Gone before this process got here (the channel closed while modules loaded): no 'disconnect' will come.
  if (process.send && !process.connected) supervisorGone();
  // On the supervisor's socket: accept only when told, and take part in hot restarts (handover-protocol.ts).
  const supervised = process.send !== undefined && config.listenFd !== undefined;
  const tell = (message: FromChild) => process.send?.(message, () => undefined);
  if (supervised) {
    process.on('message', (message) => {
      if (!isToChild(message) || exitCode !== undefined) return;
      void answerSupervisor(message).catch((error: unknown) => {
        logger.fatal({ event: 'handover_step_failed', step: message.type, err: error }, `${message.type} failed`);
        process.exit(EXIT_CODES.failed);
      });
    });
  }
  const answerSupervisor = async (message: ToChild) => {
    switch (message.type) {
      case 'accept':
        if (message.state !== undefined) gateway.adoptState(message.state);
        await gateway.listen();
        return tell({ type: 'accepting', port: gateway.port()! });
      case 'prepare':
        await gateway.prepareHandover(message.reason);
        return tell({ type: 'prepared' });
      case 'withdraw':
        return tell({ type: 'withdrawn', epoch: await gateway.withdrawHandover() });
      case 'drain': {
        exitCode = EXIT_CODES.restart;
        const { state, drained } = gateway.drain(); // stops accepting before it returns
        tell({ type: 'draining', ...(state ? { state } : {}) });
        setTimeout(() => exit(EXIT_CODES.restart, 'drain_timeout'), config.drainTimeoutMs + config.shutdownTimeoutMs).unref();
        return exit(await drained, 'exit');
      }
    }
  };

  try {
    await gateway.start();
  } catch (error) {
    if (exitCode === undefined) {
      logger.fatal({ event: 'boot_failed', err: error }, `could not start: ${(error as Error).message}. ${bootHint(config)}`);
      process.exit(EXIT_CODES.failed);
    }
  }
  if (exitCode === undefined) {
    if (supervised) tell({ type: 'ready' });
    else logger.debug({ event: 'started' }, 'started');
  }
  return new Promise<never>(() => undefined);
}

/** What an operator checks when boot fails: everything it needed came from Ganymede, at this address, with this identity. */
const bootHint = (config: GatewayConfig) =>
  `Ganymede is at ${config.ganymedeUrl} (set with --ganymede-url or GANYMEDE_URL): is it running there? ` +
  "The gateway's identity is --id / GATEWAY_ID and --token / GATEWAY_TOKEN, as `ganymede gateway add` printed them";

async function supervise(config: GatewayConfig): Promise<never> {
  const logger = createLogger({ level: config.logLevel, role: 'supervisor', base: { gateway_id: config.gatewayId } });
  const supervisor = new Supervisor({
    command: process.execPath,
    args: [...process.execArgv, CLI_PATH, 'run'],
    env: { ...process.env, ...configToEnv(config) },
    runDir: config.runDir,
    reloadMarker: config.reloadMarker,
    host: config.host,
    port: config.port,
    logger,
    killAfterMs: config.shutdownTimeoutMs + 2_000,
    handoverTimeoutMs: config.handoverTimeoutMs,
    retireAfterMs: config.drainTimeoutMs + config.shutdownTimeoutMs + 2_000,
  });
  onSignals(['SIGHUP', 'SIGUSR2', 'SIGTERM', 'SIGINT'], (signal) => supervisor.signal(signal));
  process.exit(await supervisor.run());
}

function supervisorPid(runDir: string): number {
  const pid = readPid(runDir, SUPERVISOR_PID_FILE);
  if (pid === null || !isAlive(pid))
    throw new GatewayError('NO_SUPERVISOR', `no supervisor runs for ${runDir} (no live pid in ${join(runDir, SUPERVISOR_PID_FILE)})`);
  return pid;
}

function reload(flags: Flags, reason = 'reload'): void {
  if (!(RESTART_REASONS as readonly string[]).includes(reason))
    throw new UsageError(`--reason must be one of ${RESTART_REASONS.join(', ')}`);
  const config = loadControlConfig(process.env, flags);
  const pid = supervisorPid(config.runDir);
  writeFileSync(config.reloadMarker, `${reason}\n`);
  process.kill(pid, 'SIGHUP');
  console.log(JSON.stringify({ event: 'reload_sent', supervisor_pid: pid, reason, reload_marker: config.reloadMarker }));
}

async function stop(flags: Flags, reason = 'stop'): Promise<number> {
  if (!(STOP_REASONS as readonly string[]).includes(reason)) throw new UsageError(`--reason must be one of ${STOP_REASONS.join(', ')}`);
  const config = loadControlConfig(process.env, flags);
  const pid = supervisorPid(config.runDir);
  writeFileSync(join(config.runDir, STOP_REASON_FILE), `${reason}\n`);
  process.kill(pid, 'SIGTERM');
  // Another process: no exit event to await, so look every 50 ms.
  const deadline = Date.now() + config.shutdownTimeoutMs + 5_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      console.error(`gateway stop: the supervisor (pid ${pid}) is still running`);
      return EXIT_CODES.failed;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(JSON.stringify({ event: 'stopped', supervisor_pid: pid, reason }));
  return EXIT_CODES.stopped;
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`gateway: ${(error as Error).message}\n${USAGE}`);
    return EXIT_CODES.config;
  }
  const { command, flags, reason } = parsed;
  try {
    switch (command) {
      case 'help':
        console.log(USAGE);
        return 0;
      case 'run':
        return await run(loadConfig(process.env, flags));
      case 'supervise':
        return await supervise(loadConfig(process.env, flags));
      case 'reload':
        reload(flags, reason);
        return 0;
      case 'stop':
        return await stop(flags, reason);
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      console.error(`gateway: ${error.message}${error instanceof UsageError ? `\n${USAGE}` : ''}`);
      return EXIT_CODES.config;
    }
    console.error(`gateway ${command}: ${(error as Error).message}`);
    return EXIT_CODES.failed;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
