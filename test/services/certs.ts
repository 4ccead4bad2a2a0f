import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './util.js';

export interface TestCa {
  caFile: string;
  caKey: string;
  certFile: string;
  keyFile: string;
}

/** A CA and a server certificate for 127.0.0.1 / localhost (IP and DNS SANs), made with openssl. */
export async function makeServerCerts(dir: string): Promise<TestCa> {
  await mkdir(dir, { recursive: true });
  const p = (n: string): string => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=tsbuild test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.crt'), '-days', '2', '-extfile', p('ext.cnf')]);
  return { caFile: p('ca.crt'), caKey: p('ca.key'), certFile: p('server.crt'), keyFile: p('server.key') };
}

/** Lay out `<dir>/<host>/ca.crt` as docker's /etc/docker/certs.d expects. */
export async function makeCertsDir(dir: string, host: string, caFile: string): Promise<string> {
  await mkdir(join(dir, host), { recursive: true });
  await writeFile(join(dir, host, 'ca.crt'), await readFile(caFile));
  return dir;
}

/** A self-signed RSA key + certificate for signing registry tokens (the registry's rootcertbundle). */
export async function makeTokenSigner(dir: string): Promise<{ keyFile: string; certFile: string }> {
  await mkdir(dir, { recursive: true });
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsbuild token issuer']);
  return { keyFile, certFile };
}

/** A client certificate signed by the test CA, for registries that require mutual TLS. */
export async function makeClientCert(dir: string, ca: TestCa): Promise<{ certFile: string; keyFile: string }> {
  const p = (n: string): string => join(dir, n);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('client.key'), '-out', p('client.csr'), '-subj', '/CN=tsbuild test client']);
  await writeFile(p('client-ext.cnf'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  await run('openssl', ['x509', '-req', '-in', p('client.csr'), '-CA', ca.caFile, '-CAkey', ca.caKey, '-CAcreateserial', '-out', p('client.cert'), '-days', '2', '-extfile', p('client-ext.cnf')]);
  return { certFile: p('client.cert'), keyFile: p('client.key') };
}
