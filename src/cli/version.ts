import packageJson from "../../package.json" with { type: "json" };

export interface VersionInfo {
  readonly version: string;
  readonly commit: string;
  readonly target: string;
}

/** What this program is: the build's defines, or package.json and the host when run from source. */
export function versionInfo(): VersionInfo {
  return {
    version: typeof BUILD_VERSION === "string" ? BUILD_VERSION : packageJson.version,
    commit: typeof BUILD_COMMIT === "string" ? BUILD_COMMIT : "source",
    target: typeof BUILD_TARGET === "string" ? BUILD_TARGET : hostTarget(),
  };
}

/** `chatapp 0.1.0 (a1b2c3d, linux-x64)` */
export function formatVersion(info: VersionInfo): string {
  return `chatapp ${info.version} (${info.commit}, ${info.target})`;
}

export function hostTarget(): string {
  const os = process.platform === "win32" ? "windows" : process.platform;
  return `${os}-${process.arch}`;
}
