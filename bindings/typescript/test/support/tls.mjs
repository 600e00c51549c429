// A throw-away CA and a certificate it signed for 127.0.0.1 and localhost,
// made with the openssl CLI, for chatd's --tls-cert/--tls-key in the wss:// tests.
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * `{ dir, caPath, certPath, keyPath, spki, args }`: `spki` is the base64 SHA-256 of the
 * certificate's public key (Chromium's --ignore-certificate-errors-spki-list), `args` chatd's flags.
 */
export function makeCertificate() {
  const dir = mkdtempSync(join(tmpdir(), "chatd-tls-"));
  const p = (name) => join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=chatd test CA");
  openssl("req", ...ec, "-keyout", p("key.pem"), "-out", p("cert.csr"), "-subj", "/CN=localhost");
  writeFileSync(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
  openssl("x509", "-req", "-in", p("cert.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
    "-days", "2", "-extfile", p("ext.cnf"), "-out", p("cert.pem"));
  const cert = new X509Certificate(readFileSync(p("cert.pem")));
  const spkiDer = cert.publicKey.export({ type: "spki", format: "der" });
  return {
    dir,
    caPath: p("ca.pem"),
    certPath: p("cert.pem"),
    keyPath: p("key.pem"),
    spki: createHash("sha256").update(spkiDer).digest("base64"),
    args: ["--tls-cert", p("cert.pem"), "--tls-key", p("key.pem")],
  };
}
