/**
 * The web app beside the network: `next start` on loopback with this run's deployment. When web/
 * is built it is a part like any other (it must answer, or the start fails and says why). On the
 * first start `next build` runs in the background once the network is ready, and the app's URL is
 * printed when it answers. A web app that fails after "ready" is reported and the network keeps
 * running: nothing in the network depends on the app.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { type Progress, seconds, type StepError } from "./progress.ts";
import { answers, describeExit, waitReady } from "./readiness.ts";
import { type Part, type PartInfo, shown, tailLog } from "./supervisor.ts";

const WEB_TIMEOUT_MS = 90_000;

export interface WebContext {
  port: number;
  deploymentFile: string;
  logDir: string;
  progress: Progress;
  spawnPart: (info: Omit<PartInfo, "log">, command: string, args: string[], env?: Record<string, string>) => Part;
  /** Whether the run is stopping (then nothing is reported). */
  ending: () => boolean;
  /** Names of web parts whose exit a wait here reports (the supervisor's exit handler skips them). */
  awaited: Set<string>;
}

export interface WebStart {
  /** The step's line. */
  line: string;
  url?: string;
  /** What to do once the network is ready (the first build). */
  later?: () => void;
}

export async function startWeb(c: WebContext): Promise<WebStart> {
  const webDir = resolve("web");
  const url = `http://127.0.0.1:${c.port}`;
  const nextCli = createRequire(join(webDir, "package.json")).resolve("next/dist/bin/next");
  const env = { X0T_DEPLOYMENT: c.deploymentFile, NEXT_TELEMETRY_DISABLED: "1" };
  const serve = () =>
    c.spawnPart(
      { name: "web", role: "web", listen: `127.0.0.1:${c.port}` },
      process.execPath,
      [nextCli, "start", "--hostname", "127.0.0.1", "--port", String(c.port)],
      env,
    );
  const ok = { what: `nothing answers on ${url}`, ok: () => answers(url) };
  if (existsSync(join(webDir, ".next", "BUILD_ID"))) {
    c.awaited.add("web");
    const part = serve();
    await waitReady(part, [ok], WEB_TIMEOUT_MS);
    c.awaited.delete("web");
    return { line: `web app on ${url} (${shown(part.log)})`, url };
  }
  const buildLog = join(c.logDir, "web-build.log");
  return {
    line: `web app: not built yet; it builds now, in the background (first start only, ${shown(buildLog)})`,
    later: () => {
      const started = performance.now();
      c.awaited.add("web-build");
      const build = c.spawnPart({ name: "web-build", role: "web" }, process.execPath, [nextCli, "build"], env);
      build.child.once("exit", (code, signal) => {
        if (c.ending()) return;
        if (code !== 0) {
          c.progress.line(`! web app: next build ${describeExit({ code, signal })}; the network keeps running:`);
          for (const line of tailLog(buildLog, 8)) c.progress.line(`    ${line}`);
          return;
        }
        c.awaited.add("web");
        const part = serve();
        waitReady(part, [ok], WEB_TIMEOUT_MS).then(
          () => {
            c.awaited.delete("web");
            c.progress.line(`web app on ${url} (built and started in ${seconds(performance.now() - started)})`);
          },
          (error: StepError) => {
            c.awaited.delete("web");
            if (c.ending()) return;
            c.progress.line(`! web app: ${error.message}; the network keeps running`);
            for (const line of error.details) c.progress.line(`    ${line}`);
          },
        );
      });
    },
  };
}
