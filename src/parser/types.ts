/**
 * Typed Dockerfile instructions. Every value is UNEXPANDED text: variable expansion (and the quote
 * removal that comes with it) happens at dispatch time in the builder with the stage's env, as in
 * BuildKit. E.g. `ENV A="x y"` gives value `"x y"`; `expandWord(value, env)` yields `x y`.
 */
import type { Directives } from './lines.js';

export type { Directives } from './lines.js';

export interface Location {
  file: string;
  /** 1-based, inclusive; heredoc bodies are included in the range. */
  startLine: number;
  endLine: number;
}

export interface Heredoc {
  name: string;
  /** Body with leading tabs stripped when `chomp` (`<<-`). */
  content: string;
  /** Body exactly as written (needed to hand a multi-heredoc RUN back to the shell). */
  rawContent: string;
  /** false when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no variable expansion in the body. */
  expand: boolean;
  chomp: boolean;
  fileDescriptor: number;
}

export type CommandLine = { form: 'shell'; command: string } | { form: 'exec'; command: string[] };

interface Common {
  location: Location;
  /** The logical line, continuations joined (BuildKit node.Original, used for history). */
  original: string;
  /** Raw `--flags` as written. */
  flags: string[];
}

export interface FromInstruction extends Common { kind: 'FROM'; image: string; stageName?: string; platform?: string }

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

export interface RunMount {
  /** The flag value as written; re-parse with `parseRunMount(raw, expander)` at dispatch time. */
  raw: string;
  type: MountType;
  target?: string;
  source?: string;
  from?: string;
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  readonly: boolean;
  required: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** secret exposed as this environment variable. */
  env?: string;
}

export type RunInstruction = Common & CommandLine & {
  kind: 'RUN';
  heredocs: Heredoc[];
  mounts: RunMount[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
};
export type CmdInstruction = Common & CommandLine & { kind: 'CMD' };
export type EntrypointInstruction = Common & CommandLine & { kind: 'ENTRYPOINT' };
export interface ShellInstruction extends Common { kind: 'SHELL'; form: 'exec'; command: string[] }

export interface HealthcheckInstruction extends Common {
  kind: 'HEALTHCHECK';
  test: 'NONE' | CommandLine;
  /** Go duration strings as written (validated; ≥ 1ms unless 0). */
  interval?: string;
  timeout?: string;
  startPeriod?: string;
  startInterval?: string;
  retries?: number;
}

export interface KeyValue {
  key: string;
  /** Raw value, quotes kept. */
  value: string;
  /** Legacy `ENV key value` form (no `=`). */
  noDelim: boolean;
}
export interface LabelInstruction extends Common { kind: 'LABEL'; pairs: KeyValue[] }
export interface EnvInstruction extends Common { kind: 'ENV'; pairs: KeyValue[] }
export interface MaintainerInstruction extends Common { kind: 'MAINTAINER'; name: string }

export interface AddInstruction extends Common {
  kind: 'ADD';
  /** Source paths/URLs, heredoc markers excluded. */
  sources: string[];
  dest: string;
  chown?: string;
  chmod?: string;
  checksum?: string;
  keepGitDir?: boolean;
  link?: boolean;
  exclude: string[];
  /** Set only when --unpack was given. */
  unpack?: boolean;
  /** Inline files (`ADD <<EOF /dest`), name = file name. */
  heredocs: Heredoc[];
}

export interface CopyInstruction extends Common {
  kind: 'COPY';
  sources: string[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link?: boolean;
  parents?: boolean;
  exclude: string[];
  heredocs: Heredoc[];
}

export interface ExposeInstruction extends Common { kind: 'EXPOSE'; ports: string[] }
export interface VolumeInstruction extends Common { kind: 'VOLUME'; paths: string[] }
export interface UserInstruction extends Common { kind: 'USER'; user: string }
export interface WorkdirInstruction extends Common { kind: 'WORKDIR'; path: string }
export interface ArgInstruction extends Common { kind: 'ARG'; args: { key: string; value?: string }[] }
export interface OnbuildInstruction extends Common { kind: 'ONBUILD'; instruction: Instruction; expression: string }
export interface StopsignalInstruction extends Common { kind: 'STOPSIGNAL'; signal: string }

export type Instruction =
  | FromInstruction | RunInstruction | CmdInstruction | LabelInstruction | MaintainerInstruction
  | ExposeInstruction | EnvInstruction | AddInstruction | CopyInstruction | EntrypointInstruction
  | VolumeInstruction | UserInstruction | WorkdirInstruction | ArgInstruction | OnbuildInstruction
  | StopsignalInstruction | HealthcheckInstruction | ShellInstruction;

export type InstructionKind = Instruction['kind'];

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: FromInstruction;
  /** Instructions after FROM, in order. */
  instructions: Instruction[];
}

export interface Dockerfile {
  file: string;
  directives: Directives;
  /** Every instruction in order, including the ARGs before the first FROM. */
  instructions: Instruction[];
  /** ARGs before the first FROM. */
  metaArgs: ArgInstruction[];
  stages: Stage[];
}
