// Run by identity-file.test.ts: creates or loads the identity at argv[2] and prints its signing key.
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { loadOrCreateIdentity } from "../../src/identity/identity-file.ts";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: create-identity-child.ts PATH");
const { identity, created } = loadOrCreateIdentity(path);
console.log(`${encodeBase64url(identity.signing.publicKey)} ${created}`);
