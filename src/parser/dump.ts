/** BuildKit's Node.Dump(): the s-expression format of the parser's `result` golden files. */
import type { AstNode } from './ast.js';
import { goQuote, trimSpace } from './gostr.js';
import { parseAst } from './lines.js';

function dumpNode(node: AstNode): string {
  let s = node.value.toLowerCase();
  if (node.flags.length > 0) s += ' [' + node.flags.map(goQuote).join(' ') + ']';
  if (node.sub !== undefined) s += ' ' + trimSpace('(' + dumpNode(node.sub) + ')\n');
  for (const arg of node.next) s += ' ' + goQuote(arg);
  return trimSpace(s);
}

/** Parse and dump; throws DockerfileError where BuildKit's parser fails. */
export function dumpBuildkit(text: string): string {
  const { nodes } = parseAst(text);
  return nodes.map((n) => '(' + dumpNode(n) + ')\n').join('');
}

export { dumpNode };
