'use strict';
// Starts s3rver for the engine's tests, with AWS Signature Version 4 verification added in front of it.
//
// s3rver 3.7.1 verifies only V2 signatures; for V4 (what every current SDK sends) it checks that the access key
// exists and accepts any signature. A test server that accepts a wrong secret would hide credential bugs, so this
// middleware recomputes each V4 header signature with the account's secret and rejects mismatches with the same
// SignatureDoesNotMatch error AWS S3 returns.
//
// usage: node run-s3rver.js <s3rver package dir> <data dir> <address> <bucket> [parent pid]
// prints: "S3rver listening on <address>:<port>" once it accepts requests; exits when the parent process is gone
// (a test host that crashed cannot kill it).

const crypto = require('crypto');
const path = require('path');

const [, , packageDir, directory, address, bucket, parentPid] = process.argv;
const S3rver = require(packageDir);
const S3Error = require(path.join(packageDir, 'lib', 'models', 'error'));
const AWSAccount = require(path.join(packageDir, 'lib', 'models', 'account'));

// RFC 3986 encoding, as SigV4 canonicalisation requires.
function encode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery
    .split('&')
    .filter(part => part.length > 0)
    .map(part => {
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      return [encode(decode(key.replace(/\+/g, '%20'))), encode(decode(value.replace(/\+/g, '%20')))];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function verifySignatureV4(req) {
  const authorization = req.headers['authorization'];
  if (!authorization || !authorization.startsWith('AWS4-HMAC-SHA256 ')) return;
  const fields = {};
  for (const part of authorization.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  if (!fields.Credential || !fields.SignedHeaders || !fields.Signature) {
    throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
  }
  const [accessKeyId, date, region, service, terminator] = fields.Credential.split('/');
  const account = AWSAccount.registry.get(accessKeyId);
  if (!account) return; // s3rver answers InvalidAccessKeyId itself
  const secret = account.accessKeys.get(accessKeyId);

  const [rawPath, rawQuery] = req.url.split(/\?(.*)/s);
  const canonicalUri = rawPath.split('/').map(segment => encode(decode(segment))).join('/');
  const signedHeaders = fields.SignedHeaders.split(';');
  const canonicalHeaders = signedHeaders
    .map(name => `${name}:${String(req.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const payloadHash = req.headers['x-amz-content-sha256'] || 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery(rawQuery),
    canonicalHeaders,
    fields.SignedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/${terminator}`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    req.headers['x-amz-date'],
    scope,
    crypto.createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const signingKey = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), terminator);
  const expected = hmac(signingKey, stringToSign).toString('hex');
  if (expected !== fields.Signature) {
    throw new S3Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: accessKeyId },
    );
  }
}

const server = new S3rver({
  directory,
  address,
  port: 0,
  silent: true,
  configureBuckets: [{ name: bucket, configs: [] }],
});

// First in the chain: Koa composes app.middleware when the server starts listening.
server.middleware.unshift(async (ctx, next) => {
  verifySignatureV4(ctx.req);
  await next();
});

if (parentPid) {
  setInterval(() => {
    try {
      process.kill(Number(parentPid), 0);
    } catch {
      process.exit(0);
    }
  }, 1000).unref();
}

server
  .run()
  .then(({ address: boundAddress, port }) => {
    console.log('S3rver listening on %s:%d', boundAddress, port);
  })
  .catch(err => {
    console.error(err);
    process.exit(1);
  });
