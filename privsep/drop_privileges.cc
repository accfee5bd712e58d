#include "privsep/drop_privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <vector>

#include "privsep/status_text.h"

namespace ringcache::privsep {
namespace {

// getpwnam_r's buffer starts here and doubles on ERANGE up to the maximum;
// passwd entries are tiny, the maximum only guards against a broken NSS module.
constexpr std::size_t passwd_buffer_bytes_initial = 4096;
constexpr std::size_t passwd_buffer_bytes_max = 1 << 20;

// Capability numbers probed with PR_CAPBSET_READ / PR_CAP_AMBIENT_IS_SET
// until the kernel says EINVAL; 64 bits is all capget/capset can express.
constexpr int capability_count_max = 64;

// One text per drop_status, in the enum's order (drop_privileges.h).
constexpr const char* drop_status_texts[] = {
    "ok",
    "emptying the capability bounding set failed",
    "clearing ambient capabilities failed",
    "setgroups(0) failed",
    "setresgid failed",
    "setresuid failed",
    "prctl(PR_SET_NO_NEW_PRIVS) failed",
    "clearing the capability sets failed",
    "user/group ids are not the target's after the drop",
    "supplementary groups remain after setgroups(0)",
    "capabilities remain after the drop",
    "ambient capabilities remain after the drop",
    "NoNewPrivs is not set after the drop",
    "an old user id could be regained after the drop",
    "an old group id could be regained after the drop",
};

using capability_data = std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3>;

bool read_capabilities(capability_data& data) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return syscall(SYS_capget, &header, data.data()) == 0;
}

bool clear_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  capability_data data{};
  return syscall(SYS_capset, &header, data.data()) == 0;
}

drop_result make_result(drop_status status, int error_number = 0) {
  return drop_result{status, error_number};
}

// Without CAP_SETPCAP (a container or a unit that withheld it) the bounding
// set cannot be emptied; that is tolerated because after step 5-7 no set can
// hold a capability and NoNewPrivs makes exec ignore file capabilities, so the
// bounding set has nothing left to limit.
drop_result empty_bounding_set() {
  for (int cap = 0; cap < capability_count_max; ++cap) {
    const int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0 && errno == EINVAL) break;
    if (present < 0) return make_result(drop_status::bounding_set_failed, errno);
    if (present == 0) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EPERM) break;
      return make_result(drop_status::bounding_set_failed, errno);
    }
  }
  return make_result(drop_status::ok);
}

bool any_ambient_capability() {
  for (int cap = 0; cap < capability_count_max; ++cap) {
    const int raised = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
    if (raised < 0) break;  // EINVAL past the last capability
    if (raised == 1) return true;
  }
  return false;
}

template <typename Id>
bool all_equal(Id a, Id b, Id c, Id target) {
  return a == target && b == target && c == target;
}

// Each attempt to go back must fail; one that works means the drop is
// reversible and the process is (again) privileged.
drop_result verify_cannot_regain(const std::array<uid_t, 3>& old_uids,
                                 const std::array<gid_t, 3>& old_gids, const target_user& user) {
  for (gid_t old_gid : old_gids) {
    if (old_gid == user.gid) continue;
    if (setgid(old_gid) == 0 || setegid(old_gid) == 0) return make_result(drop_status::old_gid_regained);
  }
  if (user.gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
    return make_result(drop_status::old_gid_regained);
  }
  for (uid_t old_uid : old_uids) {
    if (old_uid == user.uid) continue;
    if (setuid(old_uid) == 0 || seteuid(old_uid) == 0) return make_result(drop_status::old_uid_regained);
  }
  if (user.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    return make_result(drop_status::old_uid_regained);
  }
  return make_result(drop_status::ok);
}

drop_result verify_dropped(const target_user& user) {
  uid_t ruid = 0, euid = 0, suid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) {
    return make_result(drop_status::ids_not_changed, errno);
  }
  if (!all_equal(ruid, euid, suid, user.uid) || !all_equal(rgid, egid, sgid, user.gid)) {
    return make_result(drop_status::ids_not_changed);
  }
  if (getgroups(0, nullptr) != 0) return make_result(drop_status::groups_remain);

  capability_data caps{};
  if (!read_capabilities(caps)) return make_result(drop_status::capabilities_remain, errno);
  for (const auto& word : caps) {
    if (word.effective != 0 || word.permitted != 0 || word.inheritable != 0) {
      return make_result(drop_status::capabilities_remain);
    }
  }
  if (any_ambient_capability()) return make_result(drop_status::ambient_remain);
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return make_result(drop_status::no_new_privs_unset);
  return make_result(drop_status::ok);
}

}  // namespace

user_lookup_result lookup_user(const std::string& name) {
  user_lookup_result result{user_lookup_status::system_error, 0, target_user{name, 0, 0}};
  std::vector<char> buffer(passwd_buffer_bytes_initial);
  passwd entry{};
  passwd* found = nullptr;
  int rc = 0;
  for (;;) {
    rc = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc == EINTR) continue;
    if (rc != ERANGE || buffer.size() >= passwd_buffer_bytes_max) break;
    buffer.resize(buffer.size() * 2);
  }
  if (found == nullptr) {
    // POSIX leaves "not found" as 0 or one of these, depending on the NSS module.
    const bool not_found = rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM;
    result.status = not_found ? user_lookup_status::unknown_user : user_lookup_status::system_error;
    result.error_number = not_found ? 0 : rc;
    return result;
  }
  result.user.uid = entry.pw_uid;
  result.user.gid = entry.pw_gid;
  result.status = (entry.pw_uid == 0 || entry.pw_gid == 0) ? user_lookup_status::root_user
                                                            : user_lookup_status::ok;
  return result;
}

const char* describe(drop_status status) {
  return status_text<drop_status::old_gid_regained>(drop_status_texts, status, "unknown drop_status");
}

drop_result drop_privileges(const target_user& user) {
  assert(user.uid != 0 && user.gid != 0);
  std::array<uid_t, 3> old_uids{};
  std::array<gid_t, 3> old_gids{};
  if (getresuid(&old_uids[0], &old_uids[1], &old_uids[2]) != 0 ||
      getresgid(&old_gids[0], &old_gids[1], &old_gids[2]) != 0) {
    return make_result(drop_status::ids_not_changed, errno);
  }

  if (const drop_result bounding = empty_bounding_set(); bounding.status != drop_status::ok) {
    return bounding;
  }
  // EINVAL: a kernel without ambient capabilities (< 4.3) has none to clear.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return make_result(drop_status::ambient_clear_failed, errno);
  }
  if (setgroups(0, nullptr) != 0) return make_result(drop_status::setgroups_failed, errno);
  if (setresgid(user.gid, user.gid, user.gid) != 0) return make_result(drop_status::setresgid_failed, errno);
  if (setresuid(user.uid, user.uid, user.uid) != 0) return make_result(drop_status::setresuid_failed, errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_result(drop_status::no_new_privs_failed, errno);
  if (!clear_capabilities()) return make_result(drop_status::capset_failed, errno);

  if (const drop_result verified = verify_dropped(user); verified.status != drop_status::ok) {
    return verified;
  }
  return verify_cannot_regain(old_uids, old_gids, user);
}

}  // namespace ringcache::privsep
