/**
 * Circuits multiplexed over one link that this node opened (client → first hop, relay → next
 * hop). Allocates circuit ids and routes each cell to its circuit; a link's close reaches every
 * circuit on it. Inbound links are handled by the relay (relay.ts).
 */
import type { Link } from "../link/link.ts";
import type { Cell, CellCommand } from "../wire/cell.ts";

export interface CircuitEndpoint {
  onCell(cell: Cell): void;
  onLinkClosed(error: Error | undefined): void;
}

export class CircuitMux {
  readonly link: Link;
  private readonly circuits = new Map<number, CircuitEndpoint>();
  private nextId = 1;
  private readonly onEmpty: (() => void) | undefined;

  constructor(link: Link, onClosed?: () => void) {
    this.link = link;
    this.onEmpty = onClosed;
    link.setHandler({
      onCell: (cell) => {
        const circuit = this.circuits.get(cell.circuitId);
        // Cells for a circuit we already tore down can still be in flight: drop them.
        circuit?.onCell(cell);
      },
      onClose: (error) => {
        const circuits = [...this.circuits.values()];
        this.circuits.clear();
        for (const c of circuits) c.onLinkClosed(error);
        this.onEmpty?.();
      },
    });
  }

  get size(): number {
    return this.circuits.size;
  }

  /** Registers a circuit under a fresh id (never 0, never one in use). */
  add(endpoint: CircuitEndpoint): number {
    for (let tries = 0; tries < 1 << 16; tries++) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      if (!this.circuits.has(id)) {
        this.circuits.set(id, endpoint);
        return id;
      }
    }
    throw new Error("no free circuit id on this link");
  }

  remove(id: number): void {
    this.circuits.delete(id);
  }

  send(id: number, command: CellCommand, body: readonly Buffer[]): boolean {
    return this.link.send(id, command, body);
  }
}
