/**
 * The one entry to cedar-wasm's functions. Importing it also stops V8 from inlining calls into
 * WebAssembly, which Node.js 20's V8 cannot undo safely.
 *
 * Why: TurboFan may inline the JS-to-Wasm call of `statefulIsAuthorized` into an optimized
 * caller. cedar-wasm calls back into JavaScript while it runs, to read the request and build the
 * result, and such a callback can invalidate the caller's optimized code. V8 must then deoptimize
 * a frame that is inside the Wasm call, and Node.js 20's V8 aborts the process there with a fatal
 * "unreachable code" in `Deoptimizer::DoComputeBuiltinContinuation`. `npm run bench -- --only
 * policy` aborted that way on AMD EPYC and Intel Xeon machines with Node.js 20.20.2, and runs to
 * the end with the flag. The flag only changes how V8 optimizes such calls. It applies to the
 * whole process and must be set before the first caller is optimized, which is
 * why every module reaches cedar-wasm through this one.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export { policySetTextToParts, policyToJson, preparsePolicySet, statefulIsAuthorized, validate } from '@cedar-policy/cedar-wasm/nodejs';
export type { Context, DetailedError, EntityJson, EntityUidJson, SchemaJson, TypeOfAttribute } from '@cedar-policy/cedar-wasm/nodejs';
