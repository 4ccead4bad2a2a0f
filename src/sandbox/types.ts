/** A mount applied inside the rootfs after the overlay and before pivot_root. */
export type SandboxMount =
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  /** A writable view of a host directory whose writes are discarded (BuildKit's `bind,rw`): an overlay in workRoot. */
  | { type: 'overlay'; source: string; target: string }
  /**
   * Stacked host dirs (top-most first) as one overlay: a stage's rootfs, or a dir in it, for
   * `--mount=type=bind,from=`. Writes (unless readonly) go to workRoot and are discarded.
   */
  | { type: 'layers'; sources: string[]; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number };

export interface SandboxSpec {
  /** Overlay lower dirs, top-most first; empty means the rootfs starts empty (FROM scratch). */
  lowerDirs: string[];
  /** An empty dir (on the store's filesystem) for upper/, work/, merged/; the upper dir stays here. */
  workRoot: string;
  /** argv; args[0] is looked up in the container's PATH (from `env`) unless it contains a slash. */
  args: string[];
  /** KEY=VALUE; HOME is added from /etc/passwd when missing (like runc). */
  env: string[];
  /** Created (root, 0755) inside the rootfs when missing. */
  cwd: string;
  /** Dockerfile USER: '', 'name', 'uid', 'name:group', 'uid:gid'; resolved inside the rootfs. */
  user: string;
  hostname: string;
  /** 'none': own network namespace with only lo up. */
  network: 'host' | 'none';
  mounts: SandboxMount[];
  limits?: { memoryBytes?: number; cpus?: number; pids?: number };
  /** Contents for /etc/hosts and /etc/resolv.conf (defaults: localhost + hostname; the host's resolv.conf). */
  hostsFile?: string;
  resolvConf?: string;
  stdin?: 'null';
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface SandboxResult {
  /** 128+signal when the command was killed by a signal. */
  exitCode: number;
  /** e.g. 'SIGKILL' when the command was killed by a signal. */
  signal?: string;
  /** The memory cgroup recorded an OOM kill during the run. */
  oomKilled: boolean;
  /** The overlay upper dir, unmounted, with overlay-native whiteouts (0/0 char devices, opaque xattrs). */
  upperDir: string;
  /** Removes workRoot's contents (except what the caller moved away); idempotent. */
  dispose(): Promise<void>;
}
