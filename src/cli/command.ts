// The shape every `bitscale <command>` module exports. main.ts discovers commands by file name
// in ./commands, so adding a command never edits a shared list.

export interface CommandMeta {
  name: string;
  /** one line for `bitscale --help` */
  summary: string;
  /** full usage text for `bitscale <name> --help` */
  usage: string;
}

export interface CommandModule {
  meta: CommandMeta;
  /** returns the process exit code */
  run(argv: string[]): Promise<number>;
}
