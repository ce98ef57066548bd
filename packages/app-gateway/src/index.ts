export { createGanymedeClient, DEFAULT_CALL_TIMEOUT_MS } from './ganymede-client.js';
export type { CallOptions, GanymedeAnswer, GanymedeClient, GanymedeClientOptions, GanymedeRoute } from './ganymede-client.js';
export { configToEnv, loadConfig, loadControlConfig, SETTINGS } from './config.js';
export type { ControlConfig, GatewayConfig } from './config.js';
export {
  ConfigError,
  ERROR_CODES,
  EXIT_CODES,
  GanymedeAnswerError,
  GanymedeTimeoutError,
  GatewayError,
  InvalidAnswerError,
  SupervisorAlreadyRunningError,
  UsageError,
} from './errors.js';
export { Gateway } from './gateway.js';
export type { GatewayOptions, HeldAllocation } from './gateway.js';
export { createGatewayServer, gatewayRouter } from './http-api.js';
export { checkNotice, importNoticeKey } from './notice.js';
export type { NoticeCheck } from './notice.js';
export type { AllocatedAnswer, GatewayView, Phase } from './http-api.js';
export { backoffDelay, isTransient, retry } from './retry.js';
export { decideShutdown, resolveShutdownReason, SHUTDOWN_SIGNALS, STOP_REASON_FILE } from './shutdown-reason.js';
export type { ShutdownDecision, ShutdownRequest, ShutdownSignal } from './shutdown-reason.js';
export { crashBackoff, DEFAULT_SUPERVISOR_BACKOFF, Supervisor } from './supervisor.js';
export { CHILD_PID_FILE, SUPERVISOR_PID_FILE } from './pid-file.js';
export type { OrganizationState, StateContext, Workload, WorkloadHost } from './workload.js';
export { SHARED_DOCUMENT_PATH, SharedDocument, sharedDocument } from './workloads/shared-document.js';
