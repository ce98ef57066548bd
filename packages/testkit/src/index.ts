export { type RawAnswer, rawHttp, type RawOptions } from './raw-http.js';
