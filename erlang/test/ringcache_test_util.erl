%% Helpers shared by the test modules that run real daemons
%% (ringcache_integration_tests, ringcache_tls_tests): titled tests with a
%% time limit, quiet client logs, daemons and a client handle that are always
%% stopped, bounded waits and timings.
-module(ringcache_test_util).

-export([timed_tests/2, quiet_client_logs/0, restore_client_logs/0, with_daemons/3,
         with_handle/3, wait_until/3, elapsed_ms/1, big_values_from_processes/3]).

%% EUnit tests from [{Title, Test}]: each calls Test(Arg), with 60 s to run
%% (EUnit's `with` keeps Test's own module and name in the report).
timed_tests(Arg, Cases) ->
    [{Title, {timeout, 60, {with, Arg, [Test]}}} || {Title, Test} <- Cases].

%% The client logs servers going away and coming back, and connections
%% restarted; where a fixture provokes that on purpose it only clutters the
%% test output.
quiet_client_logs() ->
    ok = logger:set_module_level([ringcache_conn, ringcache_handle], critical).

restore_client_logs() ->
    ok = logger:unset_module_level([ringcache_conn, ringcache_handle]).

%% Runs Fun with Count daemons started with Args on free ports, stopping
%% them however Fun ends.
with_daemons(Count, Args, Fun) ->
    Daemons = [ringcache_daemon:start(0, Args) || _ <- lists:seq(1, Count)],
    try Fun(Daemons) after [ringcache_daemon:stop(D) || D <- Daemons] end.

%% Runs Fun with a handle on Servers, stopping it however Fun ends.
with_handle(Servers, Options, Fun) ->
    {ok, H} = ringcache:start(Servers, Options),
    try Fun(H) after ringcache:stop(H) end.

%% Calls Fun until it returns Expected or TimeoutMs have passed; returns
%% what it returned last.
wait_until(Fun, Expected, TimeoutMs) ->
    wait_until_deadline(Fun, Expected, erlang:monotonic_time(millisecond) + TimeoutMs).

wait_until_deadline(Fun, Expected, Deadline) ->
    case Fun() of
        Expected -> Expected;
        Other ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> Other;
                false ->
                    timer:sleep(50),
                    wait_until_deadline(Fun, Expected, Deadline)
            end
    end.

%% How long Fun took, in milliseconds, and what it returned.
elapsed_ms(Fun) ->
    {Us, Result} = timer:tc(Fun),
    {Us div 1000, Result}.

%% Three processes at once each PUT and GET two values of about
%% ValueBytes, with a GET of the small key `small` between; returns what
%% each saw, [{PutReply, SmallReply, BigReadBack} x 2] per process, or
%% timeout for one that did not finish within WaitMs.
big_values_from_processes(H, ValueBytes, WaitMs) ->
    Parent = self(),
    Workers = [spawn_link(fun() ->
                                  Value = binary:copy(<<I>>, ValueBytes + I),
                                  R = [{ringcache:put(H, {big, I, J}, Value),
                                        ringcache:get(H, small),
                                        ringcache:get(H, {big, I, J}) =:= {ok, Value}}
                                       || J <- [1, 2]],
                                  Parent ! {self(), R}
                          end) || I <- lists:seq(1, 3)],
    [receive {W, R} -> R after WaitMs -> timeout end || W <- Workers].
