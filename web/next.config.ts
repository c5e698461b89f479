import type { NextConfig } from "next";

// No request leaves the machine at build or run time: system fonts only, telemetry off (env).
const config: NextConfig = {
  // The relayer workspace ships TypeScript sources (its generated ABIs among them).
  transpilePackages: ["@x0tta6bl4/relayer"],
  poweredByHeader: false,
  reactStrictMode: true,
};
export default config;
