/**
 * Limits on how deeply a Cedar policy may nest, checked on the text before any of it reaches
 * cedar-wasm.
 *
 * Why: cedar-wasm parses and evaluates recursively, on a stack of fixed size in its WebAssembly
 * memory. Text that nests too deeply overflows that stack, and the trap ("memory access out of
 * bounds") leaves cedar-wasm's memory damaged, so every later parse and evaluation in the process
 * fails until it restarts. With cedar-wasm 4.13 on Node.js 20 the overflow began at about 120
 * nested brackets (parentheses, sets or records), about 370 chained operators, about 400 `unless`
 * clauses and about 1,800 chained `["…"]` accesses in one policy. The limits below stay well under
 * each of these, also combined.
 */

/** Maximum number of brackets (`(`, `[`, `{`) open at once, the policy's own `{ … }` around a condition included. */
export const MAX_NESTING_DEPTH = 32;

/**
 * Maximum number of steps in one policy. A step is anything that can add a level to the parsed
 * expression: an operator, a member access (`.`), an opening bracket (so an index `["a"]` counts),
 * or one of the keywords `if`, `in`, `has`, `like`, `is`, `when` and `unless`.
 */
export const MAX_STEPS_PER_POLICY = 128;

/** A problem with the place (1-based line and column) of the token that went over a limit. */
export interface DepthProblem {
  message: string;
  line: number;
  column: number;
}

const OPENING = new Set(['(', '[', '{']);
const CLOSING = new Set([')', ']', '}']);
const TWO_CHARACTER_OPERATORS = new Set(['&&', '||', '==', '!=', '<=', '>=']);
const ONE_CHARACTER_OPERATORS = new Set(['<', '>', '+', '-', '*', '!', '.']);
const KEYWORD_STEPS = new Set(['if', 'in', 'has', 'like', 'is', 'when', 'unless']);
const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/y;
const COMMENT_END = /[\r\n]/g;

/**
 * Scans Cedar policy text for the first place where it nests deeper than `MAX_NESTING_DEPTH` or
 * where one policy has more than `MAX_STEPS_PER_POLICY` steps. String literals and `//` comments
 * (to the next line feed or carriage return) are skipped, and a `;` outside brackets ends a
 * policy. Returns undefined when the text is within both limits. The scan reads tokens only, so it
 * also counts in text that Cedar would reject.
 */
export function findDepthProblem(source: string): DepthProblem | undefined {
  let depth = 0;
  let steps = 0;
  let line = 1;
  let lineStart = 0;
  let index = 0;
  const problem = (message: string): DepthProblem => ({ message, line, column: index - lineStart + 1 });
  const tooManySteps = (): DepthProblem | undefined => {
    steps += 1;
    return steps > MAX_STEPS_PER_POLICY ? problem(`The policy has more than ${MAX_STEPS_PER_POLICY} operators, brackets and clauses. Split its conditions into several policies.`) : undefined;
  };

  while (index < source.length) {
    const character = source[index] ?? '';
    const pair = source.slice(index, index + 2);

    if (character === '\n') {
      line += 1;
      lineStart = index + 1;
      index += 1;
    } else if (character === '"') {
      const end = endOfString(source, index);
      const lastNewline = source.lastIndexOf('\n', end - 1);
      if (lastNewline > index) {
        line += source.slice(index, end).split('\n').length - 1;
        lineStart = lastNewline + 1;
      }
      index = end;
    } else if (pair === '//') {
      // Cedar ends a comment at a carriage return too, so a comment must not hide what follows one.
      COMMENT_END.lastIndex = index;
      index = COMMENT_END.exec(source) === null ? source.length : COMMENT_END.lastIndex - 1;
    } else if (OPENING.has(character)) {
      depth += 1;
      if (depth > MAX_NESTING_DEPTH) return problem(`The policy nests more than ${MAX_NESTING_DEPTH} brackets deep. Write the condition with less nesting.`);
      const exceeded = tooManySteps();
      if (exceeded !== undefined) return exceeded;
      index += 1;
    } else if (CLOSING.has(character)) {
      depth = Math.max(0, depth - 1);
      index += 1;
    } else if (character === ';' && depth === 0) {
      steps = 0;
      index += 1;
    } else if (TWO_CHARACTER_OPERATORS.has(pair) || ONE_CHARACTER_OPERATORS.has(character)) {
      const exceeded = tooManySteps();
      if (exceeded !== undefined) return exceeded;
      index += TWO_CHARACTER_OPERATORS.has(pair) ? 2 : 1;
    } else {
      IDENTIFIER.lastIndex = index;
      const word = IDENTIFIER.exec(source)?.[0];
      if (word === undefined) {
        index += 1;
        continue;
      }
      if (KEYWORD_STEPS.has(word)) {
        const exceeded = tooManySteps();
        if (exceeded !== undefined) return exceeded;
      }
      index += word.length;
    }
  }
  return undefined;
}

/** Returns the index after the string literal that starts at `start`, skipping escaped characters. */
function endOfString(source: string, start: number): number {
  let index = start + 1;
  while (index < source.length && source[index] !== '"') index += source[index] === '\\' ? 2 : 1;
  return index + 1;
}
