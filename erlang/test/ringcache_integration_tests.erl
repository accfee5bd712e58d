%% The client against real ringcached daemons started here (3 servers,
%% $RINGCACHED): what a user of the client relies on (erlang/README.md), including servers that
%% die, hang and come back.
-module(ringcache_integration_tests).
-include_lib("eunit/include/eunit.hrl").
-import(ringcache_test_util, [timed_tests/2, quiet_client_logs/0, restore_client_logs/0, with_daemons/3,
                              with_handle/3, wait_until/3, elapsed_ms/1, big_values_from_processes/3]).

-define(servers, 3).

%% ---------------------------------------------------------------- fixtures

%% Counted as a failure in EUnit's summary, which a fixture that cannot
%% start is not (its tests are only "cancelled").
ringcached_is_available_test() ->
    ?assertMatch(Path when is_list(Path), ringcache_daemon:executable()).

cluster_test_() ->
    {setup, fun start_cluster/0, fun stop_cluster/1,
     fun(Daemons) ->
             Servers = [ringcache_daemon:address(D) || D <- Daemons],
             timed_tests(Servers, [
                 {"any terms round-trip", fun any_terms_round_trip/1},
                 {"missing keys are enotfound", fun missing_keys/1},
                 {"an overwrite replaces the value", fun overwrite/1},
                 {"del removes", fun del_removes/1},
                 {"large values round-trip", fun large_values/1},
                 {"too_big, and the stream stays in sync", fun too_big_keeps_sync/1},
                 {"get_multi gathers from every server", fun get_multi/1},
                 {"200 processes share one socket per server", fun many_processes_one_socket/1},
                 {"namespaces share keys, handles do not", fun namespaces/1},
                 {"status/1 counts this handle's keys", fun status_text/1},
                 {"stats/1 returns every server's STATS", fun stats_map/1},
                 {"a stopped handle answers unavailable", fun stopped_handle/1},
                 {"the handle ends with its owner", fun handle_ends_with_owner/1},
                 {"a crashed connection is restarted", fun crashed_connection_restarted/1},
                 {"bad arguments are refused", fun bad_arguments/1}])
     end}.

failure_test_() ->
    [{Title, {setup, fun start_cluster/0, fun stop_cluster/1,
              fun(Daemons) -> {timeout, 60, fun() -> Test(Daemons) end} end}}
     || {Title, Test} <- [
            {"a killed server: unavailable at once, the rest works, it comes back", fun killed_server/1},
            {"replica list: fails over to the next live server", fun replica_failover/1},
            {"a hung server: timeout, then replies stay aligned", fun hung_server_alignment/1},
            {"a hung server is dropped, then reconnected", fun hung_server_dropped/1},
            {"start succeeds while a server is down", fun start_with_server_down/1}]].

%% Daemons with --auth-file (docs/binary_protocol.md, "Authentication"),
%% one per test; the setup writes their auth file.
auth_test_() ->
    {setup, fun write_auth_file/0, fun remove_auth_file/1,
     fun(Args) ->
             timed_tests(Args, [
                 {"auth: the right credentials, on every reconnection", fun auth_accepted/1},
                 {"auth: wrong credentials are a clear error", fun auth_refused/1},
                 {"auth: bad auth options are refused", fun auth_bad_options/1}])
     end}.

%% The daemon's arguments: ["--auth-file", Path].
write_auth_file() ->
    quiet_client_logs(),
    Dir = string:trim(os:cmd("mktemp -d")),
    Path = filename:join(Dir, "auth"),
    ok = file:write_file(Path, <<"alice:s3cret\nbob:other:pw\n">>),
    ok = file:change_mode(Path, 8#600),
    ["--auth-file", Path].

remove_auth_file(["--auth-file", Path]) ->
    ok = file:delete(Path),
    ok = file:del_dir(filename:dirname(Path)),
    restore_client_logs().

auth_accepted(Args) ->
    with_daemons(1, Args, fun([Daemon]) ->
        Server = ringcache_daemon:address(Daemon),
        with_handle([Server], #{auth => {<<"alice">>, "s3cret"}, timeout => 2000}, fun(H) ->
            ?assertEqual(ok, ringcache:put(H, k, v)),
            ?assertEqual({ok, v}, ringcache:get(H, k)),
            ?assertMatch(#{<<"AUTH_CMDS">> := 1, <<"AUTH_ERRORS">> := 0}, maps:get(Server, ringcache:stats(H))),
            %% A new daemon on the same port: the handle authenticates again by itself.
            ringcache_daemon:signal(Daemon, "KILL"),
            with_daemon_on(ringcache_daemon:port(Daemon), Args, fun() ->
                ?assertEqual(enotfound, wait_until(fun() -> ringcache:get(H, k) end, enotfound, 10000)),
                ?assertEqual(ok, ringcache:put(H, k, back)),
                ?assertEqual({ok, back}, ringcache:get(H, k)),
                ?assertMatch(#{<<"AUTH_CMDS">> := 1}, maps:get(Server, ringcache:stats(H)))
            end)
        end)
    end).

with_daemon_on(Port, Args, Fun) ->
    Daemon = ringcache_daemon:start(Port, Args),
    try Fun() after ringcache_daemon:stop(Daemon) end.

auth_refused(Args) ->
    with_daemons(1, Args, fun([Daemon]) ->
        Server = ringcache_daemon:address(Daemon),
        with_handle([Server], #{auth => {"alice", "wrong"}, timeout => 2000}, fun(H) ->
            ?assertEqual({error, auth_refused}, ringcache:put(H, k, v)),
            ?assertEqual({error, auth_refused}, ringcache:get(H, k)),
            ?assertEqual(#{}, ringcache:get_multi(H, [k]))
        end),
        %% Without credentials the daemon answers the probe EINVAL: unavailable.
        with_handle([Server], #{timeout => 2000}, fun(H) ->
            ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
        end),
        with_handle([Server], #{auth => {"bob", "other:pw"}, timeout => 2000}, fun(H) ->
            ?assertEqual(ok, ringcache:put(H, k, v)),
            ?assertMatch(#{<<"AUTH_ERRORS">> := N} when N >= 1, maps:get(Server, ringcache:stats(H)))
        end)
    end).

auth_bad_options(Args) ->
    with_daemons(1, Args, fun([Daemon]) ->
        Servers = [ringcache_daemon:address(Daemon)],
        ?assertEqual({error, {bad_option, auth}}, ringcache:start(Servers, #{auth => <<"alice:s3cret">>})),
        ?assertMatch({error, {bad_option, {auth, _}}}, ringcache:start(Servers, #{auth => {<<>>, <<"pw">>}})),
        ?assertMatch({error, {bad_option, {auth, _}}},
                     ringcache:start(Servers, #{auth => {<<"u">>, binary:copy(<<"p">>, 1025)}})),
        ?assertMatch({error, {bad_option, {auth, _}}}, ringcache:start(Servers, #{auth => {u, <<"pw">>}}))
    end).

%% Servers going away and coming back are the point of these tests; the
%% client's logs of it are not.
start_cluster() ->
    quiet_client_logs(),
    [ringcache_daemon:start() || _ <- lists:seq(1, ?servers)].

stop_cluster(Daemons) ->
    [ringcache_daemon:stop(D) || D <- Daemons],
    restore_client_logs().

with_handle(Servers, Fun) -> with_handle(Servers, #{}, Fun).

%% ---------------------------------------------------------------- basics

sample_terms() ->
    [0, 1, -1, 1.0, 1 bsl 200, -(1 bsl 70), 3.14159, atom, 'with space', "", "string",
     <<>>, <<"bin">>, <<0, 255, 1>>, <<1:3>>, [], [1, [2, [3]]], {}, {a, "b", <<"c">>},
     #{}, #{a => 1, "b" => [2], {c} => #{d => e}}, self(), make_ref(),
     fun lists:sort/1, {nested, [#{k => {v, [1.5, <<"x">>]}}]},
     unicode:characters_to_binary("ñandú"), lists:seq(1, 1000)].

any_terms_round_trip(Servers) ->
    with_handle(Servers, fun(H) ->
        Terms = sample_terms(),
        [?assertEqual(ok, ringcache:put(H, {key, K}, V)) || K <- Terms, V <- [K]],
        [?assertEqual({ok, K}, ringcache:get(H, {key, K})) || K <- Terms],
        %% Terms themselves as keys, each with a value naming it.
        [?assertEqual(ok, ringcache:put(H, K, {value_of, K})) || K <- Terms],
        [?assertEqual({ok, {value_of, K}}, ringcache:get(H, K)) || K <- Terms],
        %% Equal maps built in different orders are one key.
        ok = ringcache:put(H, maps:from_list([{I, I} || I <- lists:seq(1, 50)]), same),
        ?assertEqual({ok, same}, ringcache:get(H, maps:from_list([{I, I} || I <- lists:seq(50, 1, -1)])))
    end).

missing_keys(Servers) ->
    with_handle(Servers, fun(H) ->
        ?assertEqual(enotfound, ringcache:get(H, never_stored)),
        ?assertEqual(enotfound, ringcache:del(H, never_stored)),
        %% 1 and 1.0 are different terms, so different keys.
        ok = ringcache:put(H, 1, integer),
        ?assertEqual(enotfound, ringcache:get(H, 1.0))
    end).

overwrite(Servers) ->
    with_handle(Servers, fun(H) ->
        ok = ringcache:put(H, k, first),
        ok = ringcache:put(H, k, <<"second">>),
        ?assertEqual({ok, <<"second">>}, ringcache:get(H, k)),
        ?assertMatch("Total 1 keys:" ++ _, ringcache:status(H))
    end).

del_removes(Servers) ->
    with_handle(Servers, fun(H) ->
        ok = ringcache:put(H, k, v),
        ?assertEqual(ok, ringcache:del(H, k)),
        ?assertEqual(enotfound, ringcache:get(H, k)),
        ?assertEqual(enotfound, ringcache:del(H, k))
    end).

large_values(Servers) ->
    with_handle(Servers, fun(H) ->
        Big = crypto:strong_rand_bytes(4 * 1024 * 1024),
        ok = ringcache:put(H, big, Big),
        ok = ringcache:put(H, small, tiny),
        ?assertEqual({ok, Big}, ringcache:get(H, big)),
        ?assertEqual({ok, tiny}, ringcache:get(H, small)),
        %% Frames above the socket's busy mark, from several processes at
        %% once, interleaved with small requests.
        ?assertEqual(lists:duplicate(3, [{ok, {ok, tiny}, true}, {ok, {ok, tiny}, true}]),
                     big_values_from_processes(H, 10 * 1024 * 1024, 30000))
    end).

%% The test daemons run with --max-item 16M.
too_big_keeps_sync(Servers) ->
    with_handle(Servers, fun(H) ->
        [ok = ringcache:put(H, {k, I}, I) || I <- lists:seq(1, 30)],
        ?assertEqual({error, too_big}, ringcache:put(H, huge, binary:copy(<<7>>, 17 * 1024 * 1024))),
        ?assertEqual({error, too_big}, ringcache:get(H, binary:copy(<<7>>, 17 * 1024 * 1024))),
        ?assertEqual(enotfound, ringcache:get(H, huge)),
        [?assertEqual({ok, I}, ringcache:get(H, {k, I})) || I <- lists:seq(1, 30)]
    end).

get_multi(Servers) ->
    with_handle(Servers, fun(H) ->
        Stored = maps:from_list([{{m, I}, I * I} || I <- lists:seq(1, 300)]),
        maps:foreach(fun(K, V) -> ok = ringcache:put(H, K, V) end, Stored),
        Missing = [{absent, I} || I <- lists:seq(1, 50)],
        Asked = maps:keys(Stored) ++ Missing ++ [{m, 1}, {m, 2}],
        ?assertEqual(Stored, ringcache:get_multi(H, Asked)),
        ?assertEqual(#{}, ringcache:get_multi(H, [])),
        %% 300 keys over 3 servers: every server holds some.
        Status = ringcache:status(H),
        ?assertMatch("Total 300 keys: " ++ _, Status),
        {match, Percents} = re:run(Status, "([0-9]+)% ", [global, {capture, all_but_first, list}]),
        ?assertEqual(?servers, length(Percents)),
        ?assert(lists:all(fun([P]) -> list_to_integer(P) > 20 end, Percents), Status)
    end).

%% ---------------------------------------------------------------- sharing

connections(H) ->
    lists:sort([{Server, maps:get(<<"CONNECTIONS">>, Stats)} || {Server, Stats} <- maps:to_list(ringcache:stats(H))]).

many_processes_one_socket(Servers) ->
    with_handle(Servers, fun(Observer) ->
        Before = connections(Observer),
        {ok, H} = ringcache:start(Servers),
        During = connections(Observer),
        ?assertEqual([{S, N + 1} || {S, N} <- Before], During),
        Parent = self(),
        Workers = [spawn_link(fun() -> Parent ! {self(), worker(H, I)} end) || I <- lists:seq(1, 200)],
        Results = [receive {W, Result} -> Result after 30000 -> timeout end || W <- Workers],
        ?assertEqual([ok], lists:usort(Results)),
        ?assertEqual(During, connections(Observer)),
        ?assertMatch("Total 5000 keys:" ++ _, ringcache:status(H)),
        ok = ringcache:stop(H),
        ?assertEqual(Before, wait_until(fun() -> connections(Observer) end, Before, 3000))
    end).

%% Each process writes, reads back, overwrites and deletes its own keys,
%% and reads one key every process shares.
worker(H, I) ->
    Keys = [{I, J} || J <- lists:seq(1, 25)],
    [ok = ringcache:put(H, K, {v1, K}) || K <- Keys],
    [{ok, {v1, K}} = ringcache:get(H, K) || K <- Keys],
    [ok = ringcache:put(H, K, {v2, K, lists:seq(1, I)}) || K <- Keys],
    [{ok, {v2, K, _}} = ringcache:get(H, K) || K <- Keys],
    #{} = Found = ringcache:get_multi(H, Keys),
    25 = map_size(Found),
    Extra = [{I, J} || J <- lists:seq(26, 45)],
    [ok = ringcache:put(H, K, x) || K <- Extra],
    [ok = ringcache:del(H, K) || K <- Extra],
    [enotfound = ringcache:get(H, K) || K <- Extra],
    ok.

namespaces(Servers) ->
    {ok, A} = ringcache:start(Servers, #{namespace => <<"shared">>}),
    {ok, B} = ringcache:start(Servers, #{namespace => <<"shared">>}),
    {ok, C} = ringcache:start(Servers),
    {ok, D} = ringcache:start(Servers, #{namespace => <<"shared2">>}),
    try
        ok = ringcache:put(A, k, from_a),
        ?assertEqual({ok, from_a}, ringcache:get(B, k)),
        ?assertEqual(enotfound, ringcache:get(C, k)),
        ?assertEqual(enotfound, ringcache:get(D, k)),
        ok = ringcache:put(C, k, from_c),
        ?assertEqual({ok, from_a}, ringcache:get(A, k)),
        ok = ringcache:del(B, k),
        ?assertEqual(enotfound, ringcache:get(A, k)),
        ?assertEqual({ok, from_c}, ringcache:get(C, k))
    after
        [ringcache:stop(H) || H <- [A, B, C, D]]
    end.

%% ---------------------------------------------------------------- status, stats

status_text(Servers) ->
    Namespace = <<"status-", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    {ok, H} = ringcache:start(Servers, #{namespace => Namespace}),
    {ok, Other} = ringcache:start(Servers, #{namespace => Namespace}),
    try
        {Empty, EmptyPrinted} = capture_output(fun() -> ringcache:status(H) end),
        ?assertEqual(lists:flatten(["Total 0 keys: ", lists:join(", ", ["0% " ++ S || S <- Servers])]), Empty),
        ?assertEqual(Empty ++ "\n", EmptyPrinted),
        Keys = lists:seq(1, 57),
        [ok = ringcache:put(H, K, v1) || K <- Keys],
        [ok = ringcache:put(H, K, v2) || K <- lists:sublist(Keys, 20)],
        [ok = ringcache:del(H, K) || K <- [1, 2, 3]],
        enotfound = ringcache:del(H, 3),
        %% Gone behind this handle's back: its GET notices.
        ok = ringcache:del(Other, 4),
        enotfound = ringcache:get(H, 4),
        {ok, v1} = ringcache:get(H, 57),
        Live = Keys -- [1, 2, 3, 4],
        {Text, Printed} = capture_output(fun() -> ringcache:status(H) end),
        ?assertEqual(Text ++ "\n", Printed),
        assert_status(Text, Servers, expected_counts(Servers, Namespace, Live)),
        %% The other handle stored nothing itself.
        ?assertMatch("Total 0 keys:" ++ _, ringcache:status(Other))
    after
        ringcache:stop(H),
        ringcache:stop(Other)
    end.

%% How many of Keys the ring places on each server (the key encoding is
%% erlang/README.md: the namespace behind a length byte, then the term).
expected_counts(Servers, Namespace, Keys) ->
    Ring = ringcache_ring:new([list_to_binary(S) || S <- Servers]),
    Owners = [ringcache_ring:lookup(Ring, <<(byte_size(Namespace)), Namespace/binary,
                                            (term_to_binary(K, [deterministic, {minor_version, 2}]))/binary>>)
              || K <- Keys],
    [length([O || O <- Owners, O =:= I]) || I <- lists:seq(1, length(Servers))].

%% "Total T keys: P1% S1, P2% S2, ...": servers in the order given, each
%% percentage within one point of its exact share, adding up to 100.
assert_status(Text, Servers, Counts) ->
    Total = lists:sum(Counts),
    Pattern = "^Total ([0-9]+) keys: " ++ lists:join(", ", ["([0-9]+)% " ++ S || S <- Servers]) ++ "$",
    {match, [TotalText | PercentTexts]} = re:run(Text, lists:flatten(Pattern), [{capture, all_but_first, list}]),
    Percents = [list_to_integer(P) || P <- PercentTexts],
    ?assertEqual(Total, list_to_integer(TotalText)),
    ?assertEqual(100, lists:sum(Percents)),
    [?assert(abs(P - 100 * C / Total) < 1, {P, C, Total}) || {P, C} <- lists:zip(Percents, Counts)].

capture_output(Fun) ->
    Capture = spawn_link(fun() -> capture_loop([]) end),
    Old = group_leader(),
    group_leader(Capture, self()),
    try Fun() of
        Result ->
            group_leader(Old, self()),
            Capture ! {get, self()},
            receive {Capture, Output} -> {Result, Output} after 1000 -> {Result, timeout} end
    after
        group_leader(Old, self())
    end.

capture_loop(Acc) ->
    receive
        {io_request, From, ReplyAs, {put_chars, Encoding, Chars}} ->
            From ! {io_reply, ReplyAs, ok},
            capture_loop([unicode:characters_to_list(Chars, Encoding) | Acc]);
        {io_request, From, ReplyAs, {put_chars, Encoding, M, F, A}} ->
            From ! {io_reply, ReplyAs, ok},
            capture_loop([unicode:characters_to_list(apply(M, F, A), Encoding) | Acc]);
        {io_request, From, ReplyAs, _Other} ->
            From ! {io_reply, ReplyAs, {error, enotsup}},
            capture_loop(Acc);
        {get, Pid} ->
            Pid ! {self(), lists:flatten(lists:reverse(Acc))}
    end.

stats_map(Servers) ->
    with_handle(Servers, fun(H) ->
        Before = ringcache:stats(H),
        ?assertEqual(lists:sort(Servers), lists:sort(maps:keys(Before))),
        [[?assert(is_integer(maps:get(Name, Stats)), Name)
          || Name <- [<<"PUTS">>, <<"DELS">>, <<"GETS">>, <<"KEYS">>, <<"HITS">>, <<"MISSES">>,
                      <<"BYTES">>, <<"LIMIT">>, <<"CONNECTIONS">>, <<"THREADS">>, <<"UPTIME">>]]
         || Stats <- maps:values(Before)],
        [ok = ringcache:put(H, {s, I}, I) || I <- lists:seq(1, 30)],
        After = ringcache:stats(H),
        Puts = fun(M) -> lists:sum([maps:get(<<"PUTS">>, S) || S <- maps:values(M)]) end,
        ?assertEqual(Puts(Before) + 30, Puts(After))
    end).

%% ---------------------------------------------------------------- lifetime

stopped_handle(Servers) ->
    {ok, H} = ringcache:start(Servers),
    ok = ringcache:put(H, k, v),
    ok = ringcache:stop(H),
    ?assertEqual(ok, ringcache:stop(H)),
    ?assertEqual({error, unavailable}, ringcache:put(H, k, v)),
    ?assertEqual({error, unavailable}, ringcache:get(H, k)),
    ?assertEqual({error, unavailable}, ringcache:del(H, k)),
    ?assertEqual(#{}, ringcache:get_multi(H, [k])),
    ?assertEqual(#{}, ringcache:stats(H)).

handle_ends_with_owner(Servers) ->
    Parent = self(),
    Owner = spawn(fun() ->
                          {ok, H} = ringcache:start(Servers),
                          ok = ringcache:put(H, k, v),
                          Parent ! {handle, H},
                          receive stop -> ok end
                  end),
    H = receive {handle, Handle} -> Handle end,
    ?assertEqual({ok, v}, ringcache:get(H, k)),
    Owner ! stop,
    ?assertEqual({error, unavailable},
                 wait_until(fun() -> ringcache:get(H, k) end, {error, unavailable}, 2000)).

%% The handle's processes, found from the owner's side: the handle process
%% monitors its owner, the connections are linked to it.
handle_processes() ->
    {monitored_by, Monitors} = process_info(self(), monitored_by),
    [Handle] = [P || P <- Monitors, is_pid(P), proc_lib:initial_call(P) =:= {ringcache_handle, init, ['Argument__1']}],
    {links, Links} = process_info(Handle, links),
    {Handle, [P || P <- Links, proc_lib:initial_call(P) =:= {ringcache_conn, init, ['Argument__1']}]}.

crashed_connection_restarted(Servers) ->
    with_handle(Servers, fun(H) ->
        [ok = ringcache:put(H, {c, I}, I) || I <- lists:seq(1, 30)],
        {Handle, Conns} = handle_processes(),
        ?assertEqual(?servers, length(Conns)),
        [exit(Conn, kill) || Conn <- Conns],
        Expected = maps:from_list([{{c, I}, I} || I <- lists:seq(1, 30)]),
        ?assertEqual(Expected, wait_until(fun() -> ringcache:get_multi(H, maps:keys(Expected)) end,
                                          Expected, 3000)),
        {Handle, NewConns} = handle_processes(),
        ?assertEqual(?servers, length(NewConns)),
        ?assertEqual([], [C || C <- NewConns, lists:member(C, Conns)]),
        ?assertMatch("Total 30 keys:" ++ _, ringcache:status(H))
    end).

bad_arguments(Servers) ->
    ?assertMatch({error, {bad_server, _}}, ringcache:start(["127.0.0.1:notaport"])),
    ?assertEqual({error, no_servers}, ringcache:start([])),
    ?assertMatch({error, {duplicate_server, _}}, ringcache:start([hd(Servers), hd(Servers)])),
    ?assertEqual({error, {bad_option, colour}}, ringcache:start(Servers, #{colour => blue})),
    ?assertMatch({error, {bad_option, {namespace, _}}}, ringcache:start(Servers, #{namespace => "list"})),
    ?assertMatch({error, {bad_option, {namespace, _}}},
                 ringcache:start(Servers, #{namespace => binary:copy(<<"n">>, 256)})),
    ?assertMatch({error, {bad_option, {timeout, _}}}, ringcache:start(Servers, #{timeout => 0})),
    ?assertMatch({error, {bad_option, _}}, ringcache:start(Servers, not_a_map)).

%% ---------------------------------------------------------------- failures

%% Keys that the ring puts on server Index (1-based) of Servers.
keys_on(Servers, Namespace, Index, Count) ->
    Ring = ringcache_ring:new([ringcache_addr:group_name(G) || G <- element(2, ringcache_addr:parse_servers(Servers))]),
    Encoded = fun(K) -> <<(byte_size(Namespace)), Namespace/binary,
                          (term_to_binary(K, [deterministic, {minor_version, 2}]))/binary>> end,
    lists:sublist([K || K <- [{key, I} || I <- lists:seq(1, 100 * Count)],
                        ringcache_ring:lookup(Ring, Encoded(K)) =:= Index], Count).

killed_server(Daemons) ->
    Servers = [ringcache_daemon:address(D) || D <- Daemons],
    Victim = lists:nth(2, Daemons),
    with_handle(Servers, #{namespace => <<"kill">>, timeout => 2000}, fun(H) ->
        [OnA, OnB, OnC] = [keys_on(Servers, <<"kill">>, I, 10) || I <- [1, 2, 3]],
        [ok = ringcache:put(H, K, v) || K <- OnA ++ OnB ++ OnC],
        ringcache_daemon:signal(Victim, "KILL"),
        %% The connection notices the close; until then a request may
        %% still be written to the dead socket and fail as unavailable.
        {Ms, Reply} = elapsed_ms(fun() -> ringcache:get(H, hd(OnB)) end),
        ?assertEqual({error, unavailable}, Reply),
        ?assert(Ms < 1000, Ms),
        {AllMs, Replies} = elapsed_ms(fun() -> [ringcache:put(H, K, w) || K <- OnB] end),
        ?assertEqual([{error, unavailable}], lists:usort(Replies)),
        ?assert(AllMs < 1000, AllMs),
        [?assertEqual({ok, v}, ringcache:get(H, K)) || K <- OnA ++ OnC],
        ?assertEqual(maps:from_list([{K, v} || K <- OnA ++ OnC]), ringcache:get_multi(H, OnA ++ OnB ++ OnC)),
        ?assertEqual(2, map_size(ringcache:stats(H))),
        ?assertMatch("Total 30 keys:" ++ _, ringcache:status(H)),
        %% A new daemon on the same port: the handle reconnects by itself.
        Revived = ringcache_daemon:start(ringcache_daemon:port(Victim)),
        try
            ?assertEqual(enotfound, wait_until(fun() -> ringcache:get(H, hd(OnB)) end, enotfound, 10000)),
            ?assertEqual(ok, ringcache:put(H, hd(OnB), back)),
            ?assertEqual({ok, back}, ringcache:get(H, hd(OnB)))
        after
            ringcache_daemon:stop(Revived)
        end
    end).

%% Two daemons listed as replicas of one another: with the first gone,
%% requests go to the second. (These two do not replicate, so what the
%% first held is not on the second.)
replica_failover([A, B, C]) ->
    [AddrA, AddrB, AddrC] = [ringcache_daemon:address(D) || D <- [A, B, C]],
    Servers = [[AddrA, AddrB], AddrC],
    with_handle(Servers, #{namespace => <<"failover">>, timeout => 2000}, fun(H) ->
        Keys = keys_on(Servers, <<"failover">>, 1, 10),
        [ok = ringcache:put(H, K, on_a) || K <- Keys],
        [{ok, on_a} = ringcache:get(H, K) || K <- Keys],
        ?assertEqual(3, map_size(ringcache:stats(H))),
        ringcache_daemon:signal(A, "KILL"),
        _ = wait_until(fun() -> ringcache:get(H, hd(Keys)) end, enotfound, 2000),
        {Ms, Replies} = elapsed_ms(fun() -> [ringcache:get(H, K) || K <- Keys] end),
        ?assertEqual([enotfound], lists:usort(Replies)),
        ?assert(Ms < 1000, Ms),
        [?assertEqual(ok, ringcache:put(H, K, on_b)) || K <- Keys],
        [?assertEqual({ok, on_b}, ringcache:get(H, K)) || K <- Keys],
        ?assertEqual(maps:from_list([{K, on_b} || K <- Keys]), ringcache:get_multi(H, Keys)),
        ringcache_daemon:signal(B, "KILL"),
        ?assertEqual({error, unavailable},
                     wait_until(fun() -> ringcache:get(H, hd(Keys)) end, {error, unavailable}, 2000))
    end).

%% A stopped (SIGSTOP) server accepts bytes and answers nothing: callers
%% time out within their deadline. Once it runs again, the late replies
%% land on the timed-out entries, not on later callers.
hung_server_alignment(Daemons) ->
    Servers = [ringcache_daemon:address(D) || D <- Daemons],
    Victim = lists:nth(3, Daemons),
    with_handle(Servers, #{namespace => <<"hung">>, timeout => 300}, fun(H) ->
        [K1, K2] = keys_on(Servers, <<"hung">>, 3, 2),
        ok = ringcache:put(H, K1, old),
        ok = ringcache:put(H, K2, other),
        ringcache_daemon:signal(Victim, "STOP"),
        {Ms, Reply} = elapsed_ms(fun() -> ringcache:get(H, K1) end),
        ?assertEqual({error, timeout}, Reply),
        ?assert(Ms >= 290 andalso Ms < 1000, Ms),
        ?assertEqual({error, timeout}, ringcache:put(H, K1, new)),
        ?assertEqual({error, timeout}, ringcache:get(H, K2)),
        ringcache_daemon:signal(Victim, "CONT"),
        ?assertEqual({ok, new}, wait_until(fun() -> ringcache:get(H, K1) end, {ok, new}, 2000)),
        ?assertEqual({ok, other}, ringcache:get(H, K2)),
        ?assertEqual(#{K1 => new, K2 => other}, ringcache:get_multi(H, [K1, K2])),
        receive Stray -> ?assertEqual(no_stray_message, Stray) after 100 -> ok end
    end).

%% Left stopped, the server is taken for hung: the connection is closed,
%% callers get unavailable at once, and it is back when the server is.
hung_server_dropped(Daemons) ->
    Servers = [ringcache_daemon:address(D) || D <- Daemons],
    Victim = lists:nth(1, Daemons),
    with_handle(Servers, #{namespace => <<"dropped">>, timeout => 300}, fun(H) ->
        [K] = keys_on(Servers, <<"dropped">>, 1, 1),
        ok = ringcache:put(H, K, v),
        ringcache_daemon:signal(Victim, "STOP"),
        ?assertEqual({error, timeout}, ringcache:get(H, K)),
        ?assertEqual({error, unavailable},
                     wait_until(fun() -> ringcache:get(H, K) end, {error, unavailable}, 6000)),
        {Ms, Reply} = elapsed_ms(fun() -> ringcache:get(H, K) end),
        ?assertEqual({error, unavailable}, Reply),
        ?assert(Ms < 100, Ms),
        ringcache_daemon:signal(Victim, "CONT"),
        ?assertEqual({ok, v}, wait_until(fun() -> ringcache:get(H, K) end, {ok, v}, 8000))
    end).

start_with_server_down(Daemons) ->
    Live = [ringcache_daemon:address(D) || D <- Daemons],
    Dead = "127.0.0.1:" ++ integer_to_list(free_port()),
    Servers = Live ++ [Dead],
    {Ms, {ok, H}} = elapsed_ms(fun() -> ringcache:start(Servers, #{namespace => <<"down">>}) end),
    try
        ?assert(Ms < 1000, Ms),
        [OnLive] = keys_on(Servers, <<"down">>, 1, 1),
        [OnDead] = keys_on(Servers, <<"down">>, 4, 1),
        ?assertEqual(ok, ringcache:put(H, OnLive, v)),
        ?assertEqual({ok, v}, ringcache:get(H, OnLive)),
        ?assertEqual({error, unavailable}, ringcache:put(H, OnDead, v)),
        ?assertEqual(3, map_size(ringcache:stats(H)))
    after
        ringcache:stop(H)
    end.

%% A port nothing listens on: bound, then released.
free_port() ->
    {ok, Socket} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Socket),
    ok = gen_tcp:close(Socket),
    Port.
