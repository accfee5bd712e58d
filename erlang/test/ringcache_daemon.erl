%% Test helper: runs a real ringcached (the binary named by $RINGCACHED) on
%% 127.0.0.1, on a port the kernel picks, and stops it again.
%%
%% The daemon runs under a small sh wrapper that kills it as soon as the
%% wrapper's stdin closes, so a daemon never outlives the Erlang VM that
%% started it, whatever happens to the tests. The wrapper prints the
%% daemon's pid first, so tests can send it signals (KILL, STOP, CONT).
-module(ringcache_daemon).

-export([start/0, start/1, start/2, stop/1, signal/2, address/1, port/1, executable/0]).

-define(start_wait_ms_max, 10000).
-define(stop_wait_ms_max, 5000).
%% Daemon log lines kept for the failure message if it will not start.
-define(log_lines_max, 50).
-define(log_line_bytes_max, 4096).

%% Killed on TERM; CONT first, as a stopped process would sit on its TERM.
-define(wrapper,
        "\"$0\" \"$@\" 2>&1 </dev/null &\n"
        "daemon=$!\n"
        "echo \"ringcache-test-pid=$daemon\"\n"
        "read -r _\n"
        "kill -TERM \"$daemon\" 2>/dev/null\n"
        "kill -CONT \"$daemon\" 2>/dev/null\n"
        "wait \"$daemon\"\n").

-record(daemon, {keeper :: pid(), os_pid :: string(), port :: inet:port_number()}).
-opaque daemon() :: #daemon{}.
-export_type([daemon/0]).

-spec start() -> daemon().
start() -> start(0).

%% Port 0 lets the kernel choose; a fixed port restarts a daemon where a
%% killed one was, to test reconnection.
-spec start(inet:port_number()) -> daemon().
start(Port) -> start(Port, []).

%% ExtraArgs: more options for the daemon (--auth-file PATH).
-spec start(inet:port_number(), [string()]) -> daemon().
start(Port, ExtraArgs) ->
    Exe = executable(),
    Args = ["-l", "127.0.0.1", "-p", integer_to_list(Port), "--text-port", "0",
            "-t", "1", "-m", "64", "--max-item", "16M" | ExtraArgs],
    Parent = self(),
    Keeper = spawn(fun() -> keeper(Parent, Exe, Args) end),
    receive
        {Keeper, started, OsPid, BoundPort} ->
            #daemon{keeper = Keeper, os_pid = OsPid, port = BoundPort};
        {Keeper, failed, Why} ->
            erlang:error({ringcached_did_not_start, Exe, Args, Why})
    after ?start_wait_ms_max ->
            exit(Keeper, kill),
            erlang:error({ringcached_did_not_start, Exe, Args, no_listening_line})
    end.

%% The daemon under test, or an error saying what to set.
-spec executable() -> string().
executable() ->
    case os:getenv("RINGCACHED") of
        false ->
            erlang:error({ringcached_unset,
                          "set RINGCACHED to the built daemon, e.g. "
                          "RINGCACHED=$PWD/../build-daemon/server/ringcached rebar3 eunit"});
        Path ->
            case filelib:is_regular(Path) of
                true -> Path;
                false -> erlang:error({ringcached_missing, Path})
            end
    end.

-spec address(daemon()) -> string().
address(#daemon{port = Port}) -> "127.0.0.1:" ++ integer_to_list(Port).

-spec port(daemon()) -> inet:port_number().
port(#daemon{port = Port}) -> Port.

%% Signal is a name kill(1) knows: "KILL", "STOP", "CONT", "TERM".
-spec signal(daemon(), string()) -> ok.
signal(#daemon{os_pid = OsPid}, "STOP") ->
    _ = os:cmd("kill -STOP " ++ OsPid),
    wait_stopped(OsPid, erlang:monotonic_time(millisecond) + ?stop_wait_ms_max);
signal(#daemon{os_pid = OsPid}, Signal) ->
    _ = os:cmd("kill -" ++ Signal ++ " " ++ OsPid),
    ok.

%% kill returns once the signal is sent; each thread stops when it next
%% runs in the kernel. Until all have, a worker may still answer, which a
%% test that stops a server to see it hang would take for a failure.
wait_stopped(OsPid, Deadline) ->
    Dir = "/proc/" ++ OsPid ++ "/task",
    Running = case file:list_dir(Dir) of
                  {ok, Tasks} -> [T || T <- Tasks, not task_stopped(Dir ++ "/" ++ T ++ "/stat")];
                  {error, _} -> []
              end,
    case Running =/= [] andalso erlang:monotonic_time(millisecond) < Deadline of
        true -> timer:sleep(5), wait_stopped(OsPid, Deadline);
        false -> ok
    end.

%% The state follows the command name's closing parenthesis: T stopped.
task_stopped(StatFile) ->
    case file:read_file(StatFile) of
        {ok, Stat} ->
            [_, After] = string:split(Stat, ") ", trailing),
            binary:first(After) =:= $T;
        {error, _} -> true
    end.

%% Stops the daemon and waits for it to be gone; a daemon already killed
%% by a test is fine.
-spec stop(daemon()) -> ok.
stop(#daemon{keeper = Keeper} = D) ->
    Ref = monitor(process, Keeper),
    Keeper ! stop,
    receive
        {'DOWN', Ref, process, Keeper, _} -> ok
    after ?stop_wait_ms_max ->
            signal(D, "KILL"),
            exit(Keeper, kill),
            ok
    end.

keeper(Parent, Exe, Args) ->
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", ?wrapper, Exe | Args]}, {line, ?log_line_bytes_max},
                      binary, exit_status, use_stdio]),
    ParentRef = monitor(process, Parent),
    starting(Parent, ParentRef, Port, undefined, []).

starting(Parent, ParentRef, Port, OsPid, Log) ->
    receive
        {Port, {data, {_, <<"ringcache-test-pid=", Pid/binary>>}}} ->
            starting(Parent, ParentRef, Port, binary_to_list(Pid), Log);
        {Port, {data, {_, Line}}} ->
            case re:run(Line, "listening binary=\\S*:([0-9]+)", [{capture, all_but_first, list}]) of
                {match, [BoundPort]} ->
                    Parent ! {self(), started, OsPid, list_to_integer(BoundPort)},
                    running(ParentRef, Port);
                nomatch ->
                    starting(Parent, ParentRef, Port, OsPid, lists:sublist([Line | Log], ?log_lines_max))
            end;
        {Port, {exit_status, Status}} ->
            Parent ! {self(), failed, {exit_status, Status, lists:reverse(Log)}};
        {'DOWN', ParentRef, process, Parent, _} ->
            shut_down(Port)
    end.

%% The daemon's log is read and dropped: a pipe nobody reads would
%% block it.
running(ParentRef, Port) ->
    receive
        {Port, {data, _Line}} -> running(ParentRef, Port);
        {Port, {exit_status, _}} -> ok;
        stop -> shut_down(Port);
        {'DOWN', ParentRef, process, _, _} -> shut_down(Port)
    end.

shut_down(Port) ->
    port_command(Port, <<"stop\n">>),
    drain_until_exit(Port).

drain_until_exit(Port) ->
    receive
        {Port, {data, _}} -> drain_until_exit(Port);
        {Port, {exit_status, _}} -> ok
    end.
