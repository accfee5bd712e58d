// Turning the root helper into an unprivileged process, and proving it.
//
// Order matters (each step needs privileges the next one removes):
//   1. empty the capability bounding set (needs CAP_SETPCAP)
//   2. clear the ambient set
//   3. setgroups(0): supplementary groups, while still allowed to change them
//   4. setresgid(gid, gid, gid): real, effective and saved group
//   5. setresuid(uid, uid, uid): after this the kernel clears permitted and
//      effective capabilities (no SECBIT_KEEP_CAPS is set by us)
//   6. PR_SET_NO_NEW_PRIVS: exec can never grant anything again (setuid bits
//      and file capabilities are ignored)
//   7. capset(0): the inheritable set too
// Then, as OpenSSH's permanently_set_uid() does, it checks the result instead
// of trusting the calls: every id is the target, no groups, no capability in
// any set, NoNewPrivs on, and setuid/setgid back to any old id fails. A drop
// that can be undone is reported as *_regained; the caller must abort.
#pragma once

#include <sys/types.h>

#include <string>

namespace ringcache::privsep {

struct target_user {
  std::string name;
  uid_t uid;
  gid_t gid;
};

enum class user_lookup_status {
  ok,
  unknown_user,  // no passwd entry by that name
  root_user,     // uid 0 or primary gid 0: would not drop anything
  system_error,  // getpwnam_r failed (NSS error, buffer limit); see error_number
};

struct user_lookup_result {
  user_lookup_status status;
  int error_number;
  target_user user;
};

// Numeric ids are refused on purpose: an account gives the operator one
// place (passwd) that says which uid/gid pair the cache runs as.
user_lookup_result lookup_user(const std::string& name);

// describe()'s table (drop_privileges.cc) lists a text per status in this order.
enum class drop_status {
  ok,
  bounding_set_failed,
  ambient_clear_failed,
  setgroups_failed,
  setresgid_failed,
  setresuid_failed,
  no_new_privs_failed,
  capset_failed,
  ids_not_changed,      // getresuid/getresgid disagree with the target
  groups_remain,        // getgroups() is not empty
  capabilities_remain,  // capget() shows a capability in some set
  ambient_remain,       // an ambient capability is still raised
  no_new_privs_unset,   // PR_GET_NO_NEW_PRIVS is not 1
  old_uid_regained,     // setuid back to an old uid worked: abort
  old_gid_regained,     // setgid back to an old gid worked: abort
};

const char* describe(drop_status status);

struct drop_result {
  drop_status status;
  int error_number;  // errno of the failing call, 0 for verification failures
};

drop_result drop_privileges(const target_user& user);

}  // namespace ringcache::privsep
