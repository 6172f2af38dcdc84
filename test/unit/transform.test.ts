import type { ServiceConnection } from '../../src/remediation/ports';
import {
  credentialMarker,
  isMarkedFor,
  MANUAL_REJECTED_DATA_FIELDS,
  parseMarker,
  toManualUpdateBody,
} from '../../src/remediation/transform';
import { connection, CONNECTION_ID, withParams } from '../helpers/remediationFixtures';

function frozenCopy<T>(value: T): T {
  const copy = structuredClone(value);
  const freeze = (o: unknown): void => {
    if (o && typeof o === 'object') {
      Object.freeze(o);
      Object.values(o).forEach(freeze);
    }
  };
  freeze(copy);
  return copy;
}

const ACCESS_TOKEN_VARIANTS: [string, ServiceConnection][] = [
  ['accesstoken: null', withParams({ accesstoken: null })],
  ["accesstoken: ''", withParams({ accesstoken: '' })],
  ['accesstoken: a GUID', withParams({ accesstoken: '9a0e7f8c-0000-4000-8000-000000000000' })],
  ['AccessToken: null (other casing)', withParams({ AccessToken: null })],
  ['no accesstoken', connection()],
];

describe('toManualUpdateBody', () => {
  describe.each(ACCESS_TOKEN_VARIANTS)('%s', (_label, input) => {
    it.each([
      ['without a new secret', undefined],
      ['with a new secret', 'n3w8Q~secretvalue'],
    ])('%s: never leaves accesstoken, never mutates the input', (_what, secret) => {
      const before = structuredClone(input);
      const body = toManualUpdateBody(frozenCopy(input), secret);
      expect(input).toEqual(before);
      expect(Object.keys(body.authorization.parameters).map((k) => k.toLowerCase())).not.toContain(
        'accesstoken',
      );
    });
  });

  it('switches to Manual and drops the fields Manual rejects', () => {
    const body = toManualUpdateBody(connection());
    expect(body.data['creationMode']).toBe('Manual');
    for (const field of MANUAL_REJECTED_DATA_FIELDS) expect(body.data).not.toHaveProperty(field);
    expect(MANUAL_REJECTED_DATA_FIELDS).toEqual(['spnObjectId', 'appObjectId', 'azureSpnRoleAssignmentId']);
  });

  it('keeps everything else untouched', () => {
    const input = { ...connection(), customExtra: { nested: [1, 2] }, readersGroup: { id: 'g' } };
    const body = toManualUpdateBody(input, 'n3w');
    const { data, authorization, ...rest } = body;
    const { data: inData, authorization: inAuth, ...inRest } = input;
    expect(rest).toEqual(inRest);
    expect(data).toEqual({
      environment: inData['environment'],
      scopeLevel: inData['scopeLevel'],
      subscriptionId: inData['subscriptionId'],
      subscriptionName: inData['subscriptionName'],
      azureSpnPermissions: inData['azureSpnPermissions'],
      creationMode: 'Manual',
    });
    expect(authorization.scheme).toBe(inAuth.scheme);
    expect(authorization.parameters).toEqual({
      tenantid: inAuth.parameters['tenantid'],
      serviceprincipalid: inAuth.parameters['serviceprincipalid'],
      authenticationType: 'spnKey',
      serviceprincipalkey: 'n3w',
    });
  });

  it.each([
    ['null on GET', null],
    ['empty', ''],
    ['absent', undefined],
    ['a masked value', '********'],
  ])(
    'without a new secret sends serviceprincipalkey null (keeps the stored one) when it is %s',
    (_label, key) => {
      // A required AzureRM field: absent is refused (EndpointFieldNotSpecified), null keeps the stored value.
      const body = toManualUpdateBody(withParams({ serviceprincipalkey: key }));
      expect(body.authorization.parameters).toHaveProperty('serviceprincipalkey', null);
    },
  );

  it('sets the new secret and authenticationType spnKey', () => {
    const body = toManualUpdateBody(
      withParams({ authenticationType: undefined, serviceprincipalkey: null }),
      'v',
    );
    expect(body.authorization.parameters['serviceprincipalkey']).toBe('v');
    expect(body.authorization.parameters['authenticationType']).toBe('spnKey');
  });

  it('keeps a Manual connection Manual and tolerates absent automatic fields', () => {
    const manual = connection({ data: { creationMode: 'Manual', subscriptionId: 's' } });
    expect(toManualUpdateBody(manual).data).toEqual({ creationMode: 'Manual', subscriptionId: 's' });
  });

  it('deep-copies: changing the body does not reach the input', () => {
    const input = connection();
    const body = toManualUpdateBody(input, 'v');
    body.serviceEndpointProjectReferences[0]!.name = 'changed';
    body.data['subscriptionName'] = 'changed';
    expect(input.serviceEndpointProjectReferences[0]!.name).toBe('prod-subscription');
    expect(input.data['subscriptionName']).toBe('Prod');
  });

  it.each(['WorkloadIdentityFederation', 'ManagedServiceIdentity', 'PublishProfile'])(
    'refuses scheme %s',
    (scheme) => {
      const c = connection();
      expect(() => toManualUpdateBody({ ...c, authorization: { ...c.authorization, scheme } })).toThrow(
        /ServicePrincipal/,
      );
    },
  );

  it('refuses an empty new secret', () => {
    expect(() => toManualUpdateBody(connection(), '')).toThrow(/empty/);
  });
});

describe('credential markers', () => {
  it('round-trips', () => {
    const marker = credentialMarker(CONNECTION_ID, 'a1b2c3d4');
    expect(marker).toBe(`sc-remediator ${CONNECTION_ID} a1b2c3d4`);
    expect(parseMarker(marker)).toEqual({ connectionId: CONNECTION_ID, rotationId: 'a1b2c3d4' });
  });

  it.each([
    [null],
    [undefined],
    [''],
    ['CWAP_AuthSecret'],
    ['sc-remediator'],
    [`sc-remediator ${CONNECTION_ID}`],
    [`sc-remediator ${CONNECTION_ID} r1 extra`],
    [`SC-REMEDIATOR ${CONNECTION_ID} r1`],
    [` sc-remediator ${CONNECTION_ID} r1`],
  ])('parseMarker(%p) is undefined', (displayName) => {
    expect(parseMarker(displayName)).toBeUndefined();
  });

  it.each([
    ['', 'r1'],
    ['a b', 'r1'],
    [CONNECTION_ID, ''],
    [CONNECTION_ID, 'r 1'],
  ])('credentialMarker(%p, %p) throws', (connectionId, rotationId) => {
    expect(() => credentialMarker(connectionId, rotationId)).toThrow();
  });

  it('isMarkedFor compares connection ids case-insensitively', () => {
    expect(isMarkedFor(credentialMarker(CONNECTION_ID.toUpperCase(), 'r1'), CONNECTION_ID)).toBe(true);
    expect(isMarkedFor(credentialMarker('other', 'r1'), CONNECTION_ID)).toBe(false);
    expect(isMarkedFor(null, CONNECTION_ID)).toBe(false);
  });
});
