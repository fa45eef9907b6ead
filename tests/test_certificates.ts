/**
 * Throwaway certificates for the TLS tests, made with `openssl` in a temp
 * dir: a CA, server certificates for localhost and 127.0.0.1 signed by it,
 * an expired one, and a key that belongs to none of them.
 *
 * @module
 */

/** The files of one test PKI; `dir` is removed when disposed. */
export interface TestCertificates extends AsyncDisposable {
  readonly dir: string;
  /** The CA's certificate, PEM text, for clients to trust. */
  readonly ca: string;
  readonly caPath: string;
  /** Makes a server certificate for localhost and 127.0.0.1 signed by the CA; returns its files. */
  server(name: string, options?: { days?: number; expired?: boolean }): Promise<CertificateFiles>;
  /** A private key of no certificate here. */
  strayKey(): Promise<string>;
}

/** A certificate and its key, as files. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(stderr)}`);
}

/** A new CA in a new temp dir. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "lb_tls_" });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=deno-lb test CA",
  ], dir);
  return {
    dir,
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    caPath: `${dir}/ca.pem`,
    async server(name, options = {}) {
      // A negative validity makes a certificate whose end lies before its start: expired.
      const days = options.expired ? -1 : options.days ?? 1;
      return await sign(dir, name, "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1", days);
    },
    async strayKey() {
      await openssl(["genpkey", "-algorithm", "RSA", "-out", "stray.key"], dir);
      return `${dir}/stray.key`;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Makes a client certificate (CN `name`, for client authentication) signed by
 * the CA of `certs`; returns its files.
 *
 * @example
 * ```ts
 * await using certs = await makeTestCertificates();
 * const client = await makeClientCertificate(certs, "client");
 * const tls = `tls: { ca: ${certs.caPath}, cert: ${client.cert}, key: ${client.key} }`;
 * ```
 */
export async function makeClientCertificate(
  certs: TestCertificates,
  name: string,
): Promise<CertificateFiles> {
  return await sign(certs.dir, name, name, "extendedKeyUsage=clientAuth", 1);
}

/** Serials of the certificates made in this process, unique per CA as they must be. */
let serial = 1;

/** A new key and a certificate for it, signed by the CA in `dir`, valid for `days`. */
async function sign(
  dir: string,
  name: string,
  commonName: string,
  extension: string,
  days: number,
): Promise<CertificateFiles> {
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${commonName}`,
  ], dir);
  await Deno.writeTextFile(`${dir}/${name}.ext`, `${extension}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-set_serial",
    String(serial++),
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
    "-days",
    String(days),
  ], dir);
  return { cert: `${dir}/${name}.pem`, key: `${dir}/${name}.key` };
}
