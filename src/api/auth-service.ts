// etcdserverpb.Auth: users, roles, permissions, enable/disable/status and Authenticate, as
// etcd 3.4 serves them. Every request goes through the log (etcd's applier decides, with the
// admin check of the caller, see src/auth/apply-checks.ts); passwords are hashed here first
// (src/auth/frontend.ts), so the log carries bcrypt hashes only.

import type * as grpc from '@grpc/grpc-js';
import { AuthService } from '../gen/etcd/rpc.js';
import type {
  AuthEnableRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthenticateRequest,
} from '../gen/etcd/rpc.js';
import { authOf } from '../auth/frontend.js';
import type { EtcdServer } from '../server/etcd-server.js';
import type { RequestKind } from '../server/state-machine.js';
import { unary } from './grpc-util.js';
import type { InternalRequest } from '../gen/raftkv/entry.js';

export function authService(s: EtcdServer): [typeof AuthService, grpc.UntypedServiceImplementation] {
  const auth = authOf(s);
  /** A request proposed as it came, as the caller. */
  const plain = <K extends RequestKind>(kind: K) =>
    unary(s, async (req: NonNullable<InternalRequest[K]>, call: grpc.ServerUnaryCall<unknown, unknown>) =>
      auth.propose(call, kind, req),
    );

  const userAdd = async (req: AuthUserAddRequest, call: grpc.ServerUnaryCall<AuthUserAddRequest, unknown>) => {
    const noPassword = req.options?.noPassword ?? false;
    // Refused before hashing if the caller may not do it (checked again when applied). An empty
    // name is refused when applied, after the permission check, as etcd orders them: a user
    // without the root role is told "permission denied", not "user name is empty".
    await auth.requireAdmin(call);
    const hashedPassword = noPassword ? '' : req.hashedPassword || (await auth.hash(req.password));
    return auth.propose(call, 'authUserAdd', { name: req.name, password: '', options: req.options, hashedPassword });
  };
  const changePassword = async (req: AuthUserChangePasswordRequest, call: grpc.ServerUnaryCall<AuthUserChangePasswordRequest, unknown>) => {
    await auth.requireAdmin(call);
    const hashedPassword = req.hashedPassword || (await auth.hash(req.password));
    return auth.propose(call, 'authUserChangePassword', { name: req.name, password: '', hashedPassword });
  };
  const authenticate = async (req: AuthenticateRequest, call: grpc.ServerUnaryCall<AuthenticateRequest, unknown>) => auth.authenticate(req.name, req.password, call);
  const enable = async (_req: AuthEnableRequest, call: grpc.ServerUnaryCall<AuthEnableRequest, unknown>) =>
    auth.propose(call, 'authEnable', {});

  return [
    AuthService,
    {
      authEnable: unary(s, enable),
      authDisable: plain('authDisable'),
      authStatus: plain('authStatus'),
      authenticate: unary(s, authenticate),
      userAdd: unary(s, userAdd),
      userGet: plain('authUserGet'),
      userList: plain('authUserList'),
      userDelete: plain('authUserDelete'),
      userChangePassword: unary(s, changePassword),
      userGrantRole: plain('authUserGrantRole'),
      userRevokeRole: plain('authUserRevokeRole'),
      roleAdd: plain('authRoleAdd'),
      roleGet: plain('authRoleGet'),
      roleList: plain('authRoleList'),
      roleDelete: plain('authRoleDelete'),
      roleGrantPermission: plain('authRoleGrantPermission'),
      roleRevokePermission: plain('authRoleRevokePermission'),
    },
  ];
}
