import type { SchemaJson, TypeOfAttribute } from './cedar-wasm.ts';
import type { ArgumentDeclarations } from './arguments.ts';

/** The entity types of Mandate's Cedar model, in the empty namespace. */
export const PERSON_TYPE = 'Person';
export const AGENT_TYPE = 'Agent';
export const RESOURCE_TYPE = 'Resource';

/** A resource as the schema needs it: its name and each action's declared arguments. */
export interface SchemaResource {
  name: string;
  actions: ReadonlyArray<{ name: string; arguments: ArgumentDeclarations }>;
}

/**
 * Returns the Cedar action id of a resource action. Action names are unique only within their
 * resource, so the id joins both: `payments/pay`.
 */
export function cedarActionId(resourceName: string, actionName: string): string {
  return `${resourceName}/${actionName}`;
}

/**
 * Builds the Cedar schema (JSON format) of a tenant from its resources. Every action applies
 * to an `Agent` or a `Person` principal and a `Resource`. An `Agent` may be a member of the
 * agents that handed it its token. The context has an optional `person` (the person an agent
 * acts for), optional `method`, `path` and `query`, and an `arguments` record of the action's
 * declared arguments. Each argument is optional, because a call may
 * leave it out, so strict validation makes a policy test it with `has` before reading it.
 */
export function buildCedarSchema(resources: readonly SchemaResource[]): SchemaJson<string> {
  const actions: SchemaJson<string>[string]['actions'] = {};
  for (const resource of resources) {
    for (const action of resource.actions) {
      actions[cedarActionId(resource.name, action.name)] = {
        appliesTo: {
          principalTypes: [AGENT_TYPE, PERSON_TYPE],
          resourceTypes: [RESOURCE_TYPE],
          context: {
            type: 'Record',
            attributes: {
              person: { type: 'Entity', name: PERSON_TYPE, required: false },
              method: { type: 'String', required: false },
              path: { type: 'String', required: false },
              query: { type: 'String', required: false },
              arguments: { type: 'Record', attributes: argumentAttributes(action.arguments), required: true },
            },
          },
        },
      };
    }
  }

  return {
    '': {
      entityTypes: {
        [PERSON_TYPE]: {},
        // An agent is `in` each agent that handed it a token (sub-agent chains).
        [AGENT_TYPE]: { memberOfTypes: [AGENT_TYPE] },
        [RESOURCE_TYPE]: { shape: { type: 'Record', attributes: { name: { type: 'String', required: true } } } },
      },
      actions,
    },
  };
}

function argumentAttributes(declarations: ArgumentDeclarations): Record<string, TypeOfAttribute<string>> {
  const attributes: Record<string, TypeOfAttribute<string>> = {};
  for (const [name, type] of Object.entries(declarations)) attributes[name] = { type, required: false };
  return attributes;
}
