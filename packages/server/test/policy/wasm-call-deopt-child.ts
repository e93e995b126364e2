/**
 * Run by wasm-call-deopt.test.ts in its own process, because without the fix it aborts V8.
 *
 * It lets TurboFan optimize a function that calls cedar-wasm's `statefulIsAuthorized`. Then it
 * makes that function's optimized code invalid while the Wasm call runs. cedar-wasm reads the
 * request's arguments through a getter, and the getter stores a string in a field that held only
 * numbers, which the optimized code relied on. V8 must then deoptimize a frame that is inside the
 * Wasm call, and with inlined JS-to-Wasm calls Node.js 20's V8 aborts there with "unreachable code".
 * Prints the decision of the last call and the field's value as JSON when the process survives.
 */
import { compilePolicy } from '../../src/policy/cedar-compile.ts';
import { buildCedarSchema } from '../../src/policy/cedar-schema.ts';
import { statefulIsAuthorized, type Context } from '../../src/policy/cedar-wasm.ts';
import { AGENT_TYPE, RESOURCE_TYPE, cedarActionId } from '../../src/policy/cedar-schema.ts';

/** Calls before the trigger. With 20 000, TurboFan had optimized the caller in every run tried. */
const WARM_CALLS = 20_000;

const schema = buildCedarSchema([{ name: 'payments', actions: [{ name: 'pay', arguments: { amount: 'Long' } }] }]);
const compiled = compilePolicy('forbid(principal, action, resource) when { context.arguments has amount && context.arguments.amount > 1000 };', 1, schema);
if (!compiled.ok || compiled.policySet.kind !== 'cedar') throw new Error(`The policy does not compile: ${JSON.stringify(compiled)}`);
const policySetId = compiled.policySet.setId;

/** A field the optimized caller reads. It contains a number until the getter below stores a string. */
const observed: { value: number | string } = { value: 1 };
let invalidateDuringCall = false;

function authorize(): [string, number | string] {
  const argumentsWithGetter = {
    get amount(): number {
      if (invalidateDuringCall) {
        invalidateDuringCall = false;
        observed.value = 'changed';
      }
      return 500;
    },
  };
  const answer = statefulIsAuthorized({
    principal: { type: AGENT_TYPE, id: 'agent' },
    action: { type: 'Action', id: cedarActionId('payments', 'pay') },
    resource: { type: RESOURCE_TYPE, id: 'payments-resource' },
    context: { arguments: argumentsWithGetter } as unknown as Context,
    entities: [],
    preparsedPolicySetId: policySetId,
  });
  return [answer.type === 'success' ? answer.response.decision : 'failure', observed.value];
}

for (let call = 0; call < WARM_CALLS; call += 1) authorize();
invalidateDuringCall = true;
process.stdout.write(`${JSON.stringify(authorize())}\n`);
