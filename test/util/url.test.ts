// etcd's URL rule (src/util/url.ts: etcdUrlProblem, as etcd's types.NewURLs takes member and
// listen URLs) and the port of a URL whose scheme's default port WHATWG's URL leaves out.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etcdUrlProblem, grpcTarget, urlPort } from '../../src/util/url.js';

describe('etcd URLs', () => {
  it('takes what etcd takes: a default port, any digits, unix sockets, IPv6, user info, spaces around', () => {
    for (const u of [
      'http://127.0.0.1:80',
      'https://127.0.0.1:443',
      'http://127.0.0.1:2380',
      'unix://127.0.0.1:5',
      'unixs://localhost:2380',
      'http://127.0.0.1:65536',
      'http://[::1]:2380',
      'HTTP://host:1',
      'http://user:pw@host:1',
      '  http://127.0.0.1:2380 ',
      'http://127.0.0.1:',
    ]) {
      assert.equal(etcdUrlProblem(u), undefined, u);
    }
  });

  it('refuses what etcd refuses, in its words', () => {
    const cases: Array<[string, RegExp]> = [
      ['ftp://127.0.0.1:21', /^URL scheme must be http, https, unix, or unixs: ftp:\/\/127\.0\.0\.1:21$/],
      ['127.0.0.1:2380', /^URL scheme must be/],
      ['not-a-url', /^URL scheme must be/],
      ['http://127.0.0.1', /^URL address does not have the form "host:port": http:\/\/127\.0\.0\.1$/],
      ['http://127.0.0.1:80x', /does not have the form "host:port"/],
      ['http://a:b:1', /does not have the form "host:port"/],
      ['http://[::1]', /does not have the form "host:port"/],
      ['http:127.0.0.1:1', /does not have the form "host:port"/],
      ['http://127.0.0.1:2380/', /^URL must not contain a path: http:\/\/127\.0\.0\.1:2380\/$/],
      ['http://127.0.0.1:2380/x', /^URL must not contain a path/],
    ];
    for (const [u, want] of cases) assert.match(etcdUrlProblem(u) ?? 'accepted', want, u);
    assert.match(etcdUrlProblem('unix://h:1', ['http', 'https']) ?? 'accepted', /^URL scheme must be http or https: /);
  });

  it('gives the port a URL names, its scheme\'s default included', () => {
    assert.equal(urlPort(new URL('http://127.0.0.1:80')), 80);
    assert.equal(urlPort(new URL('https://127.0.0.1:443')), 443);
    assert.equal(urlPort(new URL('http://127.0.0.1:2379')), 2379);
    assert.equal(grpcTarget('http://127.0.0.1:80'), '127.0.0.1:80');
    assert.equal(grpcTarget('https://[::1]:443'), '[::1]:443');
  });
});
