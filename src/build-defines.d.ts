// Replaced by literals in a compiled build (`define` in src/tools/build-config.ts);
// undeclared when run from source, so read them only through `typeof`.
declare const BUILD_VERSION: string;
declare const BUILD_COMMIT: string;
declare const BUILD_TARGET: string;
