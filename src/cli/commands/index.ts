/** The command table: every command module contributes its entries; `main` dispatches on it. */
import { buildCommands } from './build.js';
import { checkCommands } from './check.js';
import { diffCommands } from './diff.js';
import { imageCommands } from './images.js';
import { layerCommands } from './layer.js';
import { maintenanceCommands } from './maintenance.js';
import type { Command } from './shared.js';
import { transferCommands } from './transfer.js';

export type { CliIO, Command } from './shared.js';

export const COMMANDS: Record<string, Command> = {
  ...buildCommands,
  ...checkCommands,
  ...imageCommands,
  ...transferCommands,
  ...maintenanceCommands,
  ...layerCommands,
  ...diffCommands,
};
