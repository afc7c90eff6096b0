// A real OpenID Connect provider for the gateway's sign-in tests: panva's oidc-provider
// (certified by the OpenID Foundation), with one confidential client, PKCE required, and a few
// people whose `groups` claim is in the ID token. Its login page takes a name (any password);
// consent is granted at once. POST /__tamper {"mode": ...} makes the next token responses
// carry an ID token that is expired, for another audience, from another issuer, or signed with
// another key (each re-signed with jose), so the gateway's refusals can be tested; "none"
// turns that off. Prints {"ready": "<issuer>"} on stdout once listening.
//
// usage: node oidc_provider.mjs <port> <client id> <client secret> <redirect uri>
import Provider from 'oidc-provider';
import * as jose from 'jose';

const [, , port, clientId, clientSecret, redirectUri] = process.argv;
const issuer = `http://127.0.0.1:${port}`;

const people = {
  alice: ['platform'],
  carol: ['platform', 'tollgate-approvers'],
  dave: ['dba'],
  frank: ['dba'],
  mallory: [],
};

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'tollgate-test', alg: 'RS256', use: 'sig' };
const { privateKey: otherKey } = await jose.generateKeyPair('RS256');

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing] },
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
  // Put the requested claims in the ID token itself (not only at userinfo).
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => (id in people ? {
    accountId: id,
    claims: async () => ({ sub: id, preferred_username: id, name: id, groups: people[id] }),
  } : undefined),
  // Consent is granted at once: the tests are about the sign-in, not the consent page.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile groups');
    await grant.save();
    return grant;
  },
  features: { devInteractions: { enabled: true } },
});

let tamper = 'none';
provider.use(async (ctx, next) => {
  if (ctx.path === '/__tamper' && ctx.method === 'POST') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    tamper = JSON.parse(Buffer.concat(chunks).toString()).mode;
    ctx.body = { mode: tamper };
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && tamper !== 'none' && ctx.body && ctx.body.id_token) {
    const claims = jose.decodeJwt(ctx.body.id_token);
    const now = Math.floor(Date.now() / 1000);
    let key = privateKey;
    if (tamper === 'expired') Object.assign(claims, { iat: now - 3600, exp: now - 1800 });
    if (tamper === 'audience') claims.aud = 'someone-else';
    if (tamper === 'issuer') claims.iss = 'http://127.0.0.1:9/not-the-issuer';
    if (tamper === 'forged') key = otherKey;
    ctx.body = {
      ...ctx.body,
      id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signing.kid }).sign(key),
    };
  }
});

provider.listen(Number(port), '127.0.0.1', () => console.log(JSON.stringify({ ready: issuer })));
