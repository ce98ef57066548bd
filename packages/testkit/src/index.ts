/**
 * The test kit: what the tests, the demo and the benchmark share to drive the system from outside. No production
 * package depends on it. The end-to-end and replica tests, the demo and the benchmark import it from here. A
 * package's own suite, the build script and the global setup import one module at a time
 * (`@ganymede/testkit/<module>`): this index loads both apps, which they need not load.
 */
export { cliCommand, runCli, spawnCli } from './cli-process.js';
export { CLIS, GANYMEDE_CLI, GATEWAY_CLI, REPO_ROOT } from './clis.js';
export {
  adminToken,
  type GanymedeProcess,
  gatewayReady,
  type StartGanymedeProcessOptions,
  startGanymedeProcess,
  startOrganization,
  userToken,
} from './ganymede-process.js';
export {
  type GatewayChild,
  gatewayClient,
  gatewayCommand,
  type GatewayProcess,
  type RegisteredGateway,
  registerGateway,
  type SpawnGatewayChildOptions,
  spawnGatewayChild,
  startGatewayProcess,
} from './gateway-process.js';
export { noticeTarget } from './notice-target.js';
export {
  type LoggedProcess,
  type LogRecord,
  logTime,
  type ProcessExit,
  type SpawnLoggedOptions,
  spawnLogged,
  stopProcess,
} from './logged-process.js';
export { currentRun, dropSchemas, newRunId, pathTag, schemaPrefix, schemaRunStart, schemasLike } from './pg-schemas.js';
export { type RawAnswer, rawExchange, rawHttp, type RawOptions } from './raw-http.js';
export {
  PLATFORM_GANYMEDE_FQDN,
  type PlatformCall,
  type PlatformGateway,
  platformRequests,
  type ReceivedCall,
  servePlatformGateway,
} from './platform-gateway.js';
export { platformExchange, startPlatformGatewayProcess } from './platform-gateway-process.js';
export { type OlderGanymede, type OlderGanymedeOptions, startOlderGanymede } from './older-ganymede.js';
export {
  checkServingHistory,
  describeOverlap,
  type HistoryCheck,
  type Overlap,
  type OverlapKind,
  overlapWitness,
  type ServedRecord,
  servedRecords,
  type ServingWindow,
  servingWindows,
} from './serving-history.js';
export { newSeed, type SeededRandom, seededRandom } from './seeded-random.js';
export { percentile } from './stats.js';
export {
  formatLoadReport,
  type LatencyStats,
  type LoadCounts,
  type LoadReport,
  type PhaseReport,
  runSteadyLoad,
  type SteadyLoad,
  type SteadyLoadOptions,
} from './steady-load.js';
export { type LoadCommand, type LoadProcess, type LoadReply, startLoadProcess } from './steady-load-process.js';
export { tempDir } from './temp-dir.js';
export { DEFAULT_TEST_DATABASE_URL, redactUrl, type TestDatabaseKind, testDatabaseKind, testDatabaseUrl } from './test-database.js';
export { type DocClient, openDoc } from './doc-client.js';
export { findFreePort } from './free-port.js';
export { type ScriptedGateway, scriptedGateway } from './scripted-gateway.js';
export { type ProxyMode, startTcpProxy, type TcpProxy } from './tcp-proxy.js';
