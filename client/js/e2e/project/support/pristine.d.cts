import type { Client } from "pg";

export interface State {
  tables: string[];
  accounts: string[];
  projects: { name: string; task_count: number }[];
  scratch: number;
  audit: number;
  accountsSeq: { last_value: string; is_called: boolean };
  invoiceSeq: { last_value: string; is_called: boolean };
  triggers: number;
}
export const PRISTINE: State;
export function state(client: Client): Promise<State>;
export function meetOtherWorkers(dir: string, me: { worker: string; file: string; database: string }, timeoutMs?: number): Promise<{ worker: string; file: string; database: string }[]>;
