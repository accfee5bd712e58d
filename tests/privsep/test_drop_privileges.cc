// The privilege drop itself, run as root in forked children so the test
// process keeps its own ids. Exits 77 (meson: SKIP) when not root.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "privsep/drop_privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

namespace {

using namespace ringcache::privsep;

constexpr int exit_skip = 77;

std::map<std::string, std::string> own_status() {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::size_t start = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = start == std::string::npos ? "" : line.substr(start);
  }
  return fields;
}

// Child exit codes, so the parent can say which property failed.
enum child_exit : int {
  child_ok = 0,
  child_drop_failed = 10,
  child_wrong_uid,
  child_wrong_gid,
  child_groups_left,
  child_caps_left,
  child_no_new_privs_unset,
  child_regained_root,
  child_setup_failed,
};

template <typename Setup>
int run_dropped_child(const target_user& user, Setup setup) {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (!setup()) _exit(child_setup_failed);
    if (drop_privileges(user).status != drop_status::ok) _exit(child_drop_failed);
    auto status = own_status();
    const std::string uid = std::to_string(user.uid);
    const std::string gid = std::to_string(user.gid);
    if (status["Uid"] != uid + "\t" + uid + "\t" + uid + "\t" + uid) _exit(child_wrong_uid);
    if (status["Gid"] != gid + "\t" + gid + "\t" + gid + "\t" + gid) _exit(child_wrong_gid);
    if (!status["Groups"].empty()) _exit(child_groups_left);
    for (const char* set : {"CapEff", "CapPrm", "CapAmb", "CapInh"}) {
      if (status[set] != "0000000000000000") _exit(child_caps_left);
    }
    if (status["NoNewPrivs"] != "1") _exit(child_no_new_privs_unset);
    if (setuid(0) == 0 || setgid(0) == 0) _exit(child_regained_root);
    _exit(child_ok);
  }
  int wait_status = 0;
  REQUIRE(waitpid(child, &wait_status, 0) == child);
  REQUIRE(WIFEXITED(wait_status));
  return WEXITSTATUS(wait_status);
}

target_user nobody() {
  const user_lookup_result r = lookup_user("nobody");
  REQUIRE(r.status == user_lookup_status::ok);
  return r.user;
}

bool raise_ambient(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  if (syscall(SYS_capget, &header, data.data()) != 0) return false;
  data[0].inheritable |= 1u << cap;
  if (syscall(SYS_capset, &header, data.data()) != 0) return false;
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) == 0;
}

}  // namespace

TEST_CASE("user lookup") {
  const user_lookup_result found = lookup_user("nobody");
  CHECK(found.status == user_lookup_status::ok);
  CHECK(found.user.uid != 0);
  CHECK(lookup_user("root").status == user_lookup_status::root_user);
  CHECK(lookup_user("no-such-user-ringcache-test").status == user_lookup_status::unknown_user);
  CHECK(lookup_user("").status == user_lookup_status::unknown_user);
}

TEST_CASE("drop from plain root: target ids, no groups, no capabilities, NoNewPrivs, no way back") {
  CHECK(run_dropped_child(nobody(), [] { return true; }) == child_ok);
}

TEST_CASE("supplementary groups held before the drop are gone after it") {
  CHECK(run_dropped_child(nobody(), [] {
          const std::array<gid_t, 3> groups{0, 4, 27};
          return setgroups(groups.size(), groups.data()) == 0;
        }) == child_ok);
}

TEST_CASE("an ambient and inheritable capability raised before the drop is gone after it") {
  CHECK(run_dropped_child(nobody(), [] { return raise_ambient(CAP_NET_BIND_SERVICE); }) == child_ok);
}

TEST_CASE("split real/saved ids (as after a setuid exec) are all replaced") {
  CHECK(run_dropped_child(nobody(), [] { return setresuid(1, 0, 0) == 0 && setresgid(1, 0, 0) == 0; }) ==
        child_ok);
}

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::puts("SKIP: the privilege drop can only be tested as root");
    return exit_skip;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
