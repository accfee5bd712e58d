%% The client's option tls (erlang/README.md, "TLS") against real ringcached
%% daemons started with --tls-cert ($RINGCACHED). The certificates are made
%% when the tests start, with the openssl command as README.md's "TLS" shows,
%% in a temporary directory removed at the end.
-module(ringcache_tls_tests).
-include_lib("eunit/include/eunit.hrl").
-import(ringcache_test_util, [timed_tests/2, quiet_client_logs/0, restore_client_logs/0, with_daemons/3,
                              with_handle/3, wait_until/3, elapsed_ms/1, big_values_from_processes/3]).

%% A logger handler: the tests read what the client logs.
-export([log/2]).

-define(openssl_wait_ms_max, 30000).

tls_test_() ->
    {setup, fun make_certificates/0, fun remove_certificates/1,
     fun(Dir) ->
             timed_tests(Dir, [
                 {"tls: put/get/del to one server, by address and by host name", fun one_server/1},
                 {"tls: three servers, one TLS connection each", fun three_servers/1},
                 {"tls: 1 MiB and 8 MiB values, several processes at once", fun large_values/1},
                 {"tls: 4 MiB GETs and PUTs at once do not deadlock", fun large_both_ways/1},
                 {"tls: a hung server with large PUTs on their way is dropped", fun hung_server_large_puts/1},
                 {"tls: a server whose CA the client does not trust is unavailable", fun untrusted_server/1},
                 {"tls: a certificate for another name is refused", fun wrong_host_name/1},
                 {"tls: a host name is checked as a name, an address as an address", fun name_or_address/1},
                 {"tls: a handshake that never ends is bounded (3 s)", fun silent_server/1},
                 {"tls: --tls-verify-clients: a client certificate is needed", fun client_certificates/1},
                 {"tls: TLS client and plain server, plain client and TLS server", fun mismatched/1},
                 {"tls: a killed server is unavailable, then reconnected over TLS", fun killed_server/1},
                 {"tls: bad tls options are refused", fun bad_options/1}])
     end}.

%% ---------------------------------------------------------------- certificates

%% Two CAs: "ca" signs the server's and the client's certificates, "other"
%% signs a certificate nobody trusts. The server's names: localhost and
%% 127.0.0.1; with the same key, wrongname.pem names another host and
%% dnsonly.pem only localhost.
make_certificates() ->
    quiet_client_logs(),
    Dir = string:trim(os:cmd("mktemp -d")),
    Cmds = [
        ca_cmd("ca"), ca_cmd("other"),
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -keyout server.key -out server.csr -subj /CN=cache1",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile server.ext -out server.pem",
        "printf 'subjectAltName=DNS:elsewhere.example,IP:10.9.9.9\\n' > wrongname.ext",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile wrongname.ext -out wrongname.pem",
        "printf 'subjectAltName=DNS:localhost\\n' > dnsonly.ext",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile dnsonly.ext -out dnsonly.pem",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -keyout client.key -out client.csr -subj /CN=app1",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -keyout stranger.key -out stranger.csr -subj /CN=stranger",
        "openssl x509 -req -in stranger.csr -CA other.pem -CAkey other.key -CAcreateserial -days 2"
        " -out stranger.pem",
        "chmod 600 *.key"],
    [run(Dir, Cmd) || Cmd <- Cmds],
    Dir.

ca_cmd(Name) ->
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
    " -keyout " ++ Name ++ ".key -out " ++ Name ++ ".pem -subj '/CN=ringcache test " ++ Name ++ "'".

%% A command in Dir that must succeed within openssl_wait_ms_max.
run(Dir, Cmd) ->
    Port = open_port({spawn, "sh -c \"cd '" ++ Dir ++ "' && " ++ escape(Cmd) ++ "\" 2>&1"},
                     [binary, exit_status, stderr_to_stdout]),
    collect(Port, Cmd, []).

escape(Cmd) -> lists:flatmap(fun($") -> "\\\""; (C) -> [C] end, Cmd).

collect(Port, Cmd, Output) ->
    receive
        {Port, {data, Data}} -> collect(Port, Cmd, [Data | Output]);
        {Port, {exit_status, 0}} -> ok;
        {Port, {exit_status, Status}} ->
            erlang:error({command_failed, Cmd, Status, iolist_to_binary(lists:reverse(Output))})
    after ?openssl_wait_ms_max ->
            erlang:error({command_timed_out, Cmd})
    end.

remove_certificates(Dir) ->
    ok = file:del_dir_r(Dir),
    restore_client_logs().

file(Dir, Name) -> filename:join(Dir, Name).

server_args(Dir) -> server_args(Dir, "server.pem").

server_args(Dir, Cert) ->
    ["--tls-cert", file(Dir, Cert), "--tls-key", file(Dir, "server.key")].

verify_clients_args(Dir) ->
    server_args(Dir) ++ ["--tls-ca", file(Dir, "ca.pem"), "--tls-verify-clients"].

%% What a careful user passes: the server's certificate checked against
%% the CA and the host name. ssl logs its own alerts; here they are expected.
client_tls(Dir) -> client_tls(Dir, "ca.pem").

client_tls(Dir, CaFile) ->
    [{verify, verify_peer}, {cacertfile, file(Dir, CaFile)}, {log_level, none}].

with_certificate(Dir, Name, Tls) ->
    [{certfile, file(Dir, Name ++ ".pem")}, {keyfile, file(Dir, Name ++ ".key")} | Tls].

%% ---------------------------------------------------------------- helpers

sum_stat(H, Name) ->
    lists:sum([maps:get(Name, Stats, 0) || Stats <- maps:values(ringcache:stats(H))]).

%% The daemon's TLS connections, 1.2 and 1.3.
tls_connections(Stats) ->
    maps:get(<<"TLS_CONNECTIONS_TLS12">>, Stats, 0) + maps:get(<<"TLS_CONNECTIONS_TLS13">>, Stats, 0).

%% Runs Fun with ringcache_conn's notices and warnings sent here instead
%% of printed; returns them as {Format, Args}.
capturing_log(Fun) ->
    {ok, #{level := DefaultLevel}} = logger:get_handler_config(default),
    ok = logger:update_handler_config(default, level, none),
    ok = logger:add_handler(ringcache_tls_tests, ?MODULE, #{level => notice, config => #{pid => self()}}),
    ok = logger:set_module_level(ringcache_conn, notice),
    try
        Fun(),
        collect_log([])
    after
        ok = logger:set_module_level(ringcache_conn, critical),
        ok = logger:remove_handler(ringcache_tls_tests),
        ok = logger:update_handler_config(default, level, DefaultLevel)
    end.

collect_log(Acc) ->
    receive
        {ringcache_tls_tests_log, Entry} -> collect_log([Entry | Acc])
    after 0 ->
            lists:reverse(Acc)
    end.

log(#{msg := {Format, Args}, meta := #{mfa := {ringcache_conn, _, _}}}, #{config := #{pid := Pid}}) ->
    Pid ! {ringcache_tls_tests_log, {Format, Args}};
log(_Other, _Config) ->
    ok.

%% ---------------------------------------------------------------- tests

one_server(Dir) ->
    with_daemons(1, server_args(Dir), fun([D]) ->
        Port = integer_to_list(ringcache_daemon:port(D)),
        [with_handle([Server], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
             ?assertEqual(ok, ringcache:put(H, k, {v, Server})),
             ?assertEqual({ok, {v, Server}}, ringcache:get(H, k)),
             ?assertEqual(ok, ringcache:del(H, k)),
             ?assertEqual(enotfound, ringcache:get(H, k)),
             ?assertEqual(enotfound, ringcache:del(H, k)),
             [Stats] = maps:values(ringcache:stats(H)),
             ?assertEqual(1, tls_connections(Stats)),
             ?assertEqual(0, maps:get(<<"TLS_HANDSHAKE_ERRORS">>, Stats))
         end) || Server <- ["127.0.0.1:" ++ Port, "localhost:" ++ Port]]
    end).

three_servers(Dir) ->
    with_daemons(3, server_args(Dir), fun(Daemons) ->
        Servers = [ringcache_daemon:address(D) || D <- Daemons],
        with_handle(Servers, #{tls => client_tls(Dir)}, fun(H) ->
            Stored = maps:from_list([{{k, I}, {value, I}} || I <- lists:seq(1, 300)]),
            maps:foreach(fun(K, V) -> ?assertEqual(ok, ringcache:put(H, K, V)) end, Stored),
            [?assertEqual({ok, V}, ringcache:get(H, K)) || {K, V} <- maps:to_list(Stored)],
            ?assertEqual(Stored, ringcache:get_multi(H, maps:keys(Stored) ++ [absent])),
            [?assertEqual(ok, ringcache:del(H, {k, I})) || I <- lists:seq(1, 100)],
            [?assertEqual(enotfound, ringcache:get(H, {k, I})) || I <- lists:seq(1, 100)],
            Stats = ringcache:stats(H),
            ?assertEqual(lists:sort(Servers), lists:sort(maps:keys(Stats))),
            %% Every server got a share, over exactly one connection, TLS.
            [begin
                 ?assert(maps:get(<<"PUTS">>, S) > 50, S),
                 ?assertEqual(1, maps:get(<<"CONNECTIONS">>, S)),
                 ?assertEqual(1, tls_connections(S))
             end || S <- maps:values(Stats)],
            ?assertMatch("Total 200 keys: " ++ _, ringcache:status(H))
        end)
    end).

%% 8 MiB frames are above the connection's send_queue_bytes_high: the
%% sender process is the one waiting, and small requests still pass.
large_values(Dir) ->
    with_daemons(1, server_args(Dir), fun([D]) ->
        with_handle([ringcache_daemon:address(D)], #{tls => client_tls(Dir), timeout => 20000}, fun(H) ->
            MiB = crypto:strong_rand_bytes(1024 * 1024),
            ?assertEqual(ok, ringcache:put(H, mib, MiB)),
            ?assertEqual({ok, MiB}, ringcache:get(H, mib)),
            ok = ringcache:put(H, small, tiny),
            ?assertEqual(lists:duplicate(3, [{ok, {ok, tiny}, true}, {ok, {ok, tiny}, true}]),
                         big_values_from_processes(H, 8 * 1024 * 1024, 40000)),
            ?assertEqual({ok, MiB}, ringcache:get(H, mib))
        end)
    end).

%% 4 MiB GETs and PUTs at once: the daemon stops reading a connection
%% whose replies are not read (README.md, "Backpressure and bounds"),
%% so a connection that waited in ssl:send for the daemon to read would
%% never read those replies again.
large_both_ways(Dir) ->
    with_daemons(1, server_args(Dir), fun([D]) ->
        with_handle([ringcache_daemon:address(D)], #{tls => client_tls(Dir), timeout => 20000}, fun(H) ->
            %% Sized to fit the test daemon's 64 MiB with every old copy.
            Shared = crypto:strong_rand_bytes(4 * 1024 * 1024),
            ok = ringcache:put(H, shared, Shared),
            Parent = self(),
            Workers = [spawn_link(fun() ->
                                          Own = binary:copy(<<I>>, 4 * 1024 * 1024),
                                          R = [{ringcache:get(H, shared) =:= {ok, Shared},
                                                ringcache:put(H, {own, I}, Own)}
                                               || _ <- [1, 2]],
                                          Parent ! {self(), R}
                                  end) || I <- lists:seq(1, 4)],
            [?assertEqual([{true, ok}, {true, ok}], receive {W, R} -> R after 40000 -> timeout end)
             || W <- Workers]
        end)
    end).

%% A stopped (SIGSTOP) server with 24 MiB of PUTs on their way: more than
%% the socket buffers take, so sending waits. The connection must still
%% notice the stall and drop the connection (callers then get unavailable
%% at once), which it could not do if it were the one waiting in ssl:send.
hung_server_large_puts(Dir) ->
    with_daemons(1, server_args(Dir), fun([D]) ->
        with_handle([ringcache_daemon:address(D)], #{tls => client_tls(Dir), timeout => 300}, fun(H) ->
            ok = ringcache:put(H, k, v),
            ringcache_daemon:signal(D, "STOP"),
            Parent = self(),
            Workers = [spawn_link(fun() ->
                                          Parent ! {self(), ringcache:put(H, {big, I}, binary:copy(<<I>>, 8 * 1024 * 1024))}
                                  end) || I <- lists:seq(1, 3)],
            [?assertEqual({error, timeout}, receive {W, R} -> R after 5000 -> no_reply end) || W <- Workers],
            ?assertEqual({error, unavailable},
                         wait_until(fun() -> ringcache:get(H, k) end, {error, unavailable}, 8000)),
            ringcache_daemon:signal(D, "CONT"),
            ?assertEqual({ok, v}, wait_until(fun() -> ringcache:get(H, k) end, {ok, v}, 8000))
        end)
    end).

%% The handshake fails (unknown CA): start still succeeds, calls get
%% unavailable at once, nothing crashes, and the daemon counted it.
untrusted_server(Dir) ->
    with_daemons(1, server_args(Dir), fun([D]) ->
        Servers = [ringcache_daemon:address(D)],
        Logged = capturing_log(fun() ->
            with_handle(Servers, #{tls => client_tls(Dir, "other.pem"), timeout => 2000}, fun(H) ->
                {Ms, Reply} = elapsed_ms(fun() -> ringcache:put(H, k, v) end),
                ?assertEqual({error, unavailable}, Reply),
                ?assert(Ms < 100, Ms),
                ?assertEqual({error, unavailable}, ringcache:get(H, k)),
                ?assertEqual(#{}, ringcache:get_multi(H, [k])),
                ?assertEqual(#{}, ringcache:stats(H))
            end)
        end),
        ?assertMatch([{"ringcache: ~s: TLS handshake failed: ~p", [_, {tls_alert, {unknown_ca, _}}]}], Logged),
        with_handle(Servers, #{tls => client_tls(Dir)}, fun(Good) ->
            ?assert(sum_stat(Good, <<"TLS_HANDSHAKE_ERRORS">>) >= 1),
            ?assertEqual(ok, ringcache:put(Good, k, v))
        end)
    end).

%% The certificate is signed by the trusted CA, but for another host.
wrong_host_name(Dir) ->
    with_daemons(1, server_args(Dir, "wrongname.pem"), fun([D]) ->
        Port = integer_to_list(ringcache_daemon:port(D)),
        [with_handle([Server], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
             ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
         end) || Server <- ["127.0.0.1:" ++ Port, "localhost:" ++ Port]],
        %% Told which name to expect, the client accepts it.
        with_handle(["localhost:" ++ Port],
                    #{tls => [{server_name_indication, "elsewhere.example"} | client_tls(Dir)]}, fun(H) ->
            ?assertEqual(ok, ringcache:put(H, k, v))
        end)
    end).

%% ssl:connect on an open socket would check the peer's address; the
%% client checks the name the user wrote.
name_or_address(Dir) ->
    with_daemons(1, server_args(Dir, "dnsonly.pem"), fun([D]) ->
        Port = integer_to_list(ringcache_daemon:port(D)),
        with_handle(["localhost:" ++ Port], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
            ?assertEqual(ok, ringcache:put(H, k, v))
        end),
        with_handle(["127.0.0.1:" ++ Port], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
            ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
        end)
    end).

%% A listener that accepts and never answers the ClientHello: start
%% returns after the handshake's bound (3 s), and the
%% server is unavailable.
silent_server(Dir) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    {ok, Port} = inet:port(Listen),
    Server = "127.0.0.1:" ++ integer_to_list(Port),
    try
        {Ms, {ok, H}} = elapsed_ms(fun() -> ringcache:start([Server], #{tls => client_tls(Dir), timeout => 500}) end),
        try
            ?assert(Ms >= 2900 andalso Ms < 4500, Ms),
            ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
        after
            ringcache:stop(H)
        end
    after
        gen_tcp:close(Listen)
    end.

client_certificates(Dir) ->
    with_daemons(1, verify_clients_args(Dir), fun([D]) ->
        Servers = [ringcache_daemon:address(D)],
        with_handle(Servers, #{tls => with_certificate(Dir, "client", client_tls(Dir)), timeout => 2000}, fun(H) ->
            ?assertEqual(ok, ringcache:put(H, k, v)),
            ?assertEqual({ok, v}, ringcache:get(H, k)),
            ErrorsBefore = sum_stat(H, <<"TLS_HANDSHAKE_ERRORS">>),
            %% No certificate, or one from a CA the server does not trust.
            %% (With TLS 1.3 the client's side of the handshake may finish
            %% before the server refuses; the probe then fails.)
            Logged = capturing_log(fun() ->
                [with_handle(Servers, #{tls => Tls, timeout => 2000}, fun(Refused) ->
                     ?assertEqual({error, unavailable}, ringcache:put(Refused, k, refused)),
                     ?assertEqual({error, unavailable}, ringcache:get(Refused, k))
                 end) || Tls <- [client_tls(Dir), with_certificate(Dir, "stranger", client_tls(Dir))]]
            end),
            %% The server's alert (certificate_required, unknown_ca) races
            %% with its closing the connection: either is logged, once.
            ?assertEqual(2, length(Logged), Logged),
            [?assertMatch({"ringcache: ~s: TLS handshake failed: ~p", [_, {tls_alert, {_, _}}]}, Entry) ||
                {"ringcache: ~s: TLS handshake failed: ~p", _} = Entry <- Logged],
            ?assertEqual([], [E || {F, _} = E <- Logged, F =/= "ringcache: ~s: TLS handshake failed: ~p",
                                   F =/= "ringcache: ~s unreachable: ~p"]),
            ?assert(sum_stat(H, <<"TLS_HANDSHAKE_ERRORS">>) >= ErrorsBefore + 2),
            ?assertEqual({ok, v}, ringcache:get(H, k))
        end)
    end).

mismatched(Dir) ->
    with_daemons(1, [], fun([Plain]) ->
        with_handle([ringcache_daemon:address(Plain)], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
            ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
        end)
    end),
    with_daemons(1, server_args(Dir), fun([Tls]) ->
        with_handle([ringcache_daemon:address(Tls)], #{timeout => 2000}, fun(H) ->
            ?assertEqual({error, unavailable}, ringcache:put(H, k, v))
        end)
    end).

killed_server(Dir) ->
    Args = server_args(Dir),
    with_daemons(1, Args, fun([D]) ->
        with_handle([ringcache_daemon:address(D)], #{tls => client_tls(Dir), timeout => 2000}, fun(H) ->
            ok = ringcache:put(H, k, v),
            ringcache_daemon:signal(D, "KILL"),
            ?assertEqual({error, unavailable},
                         wait_until(fun() -> ringcache:get(H, k) end, {error, unavailable}, 2000)),
            {Ms, Reply} = elapsed_ms(fun() -> ringcache:put(H, k, w) end),
            ?assertEqual({error, unavailable}, Reply),
            ?assert(Ms < 100, Ms),
            Revived = ringcache_daemon:start(ringcache_daemon:port(D), Args),
            try
                ?assertEqual(enotfound, wait_until(fun() -> ringcache:get(H, k) end, enotfound, 10000)),
                ?assertEqual(ok, ringcache:put(H, k, back)),
                ?assertEqual({ok, back}, ringcache:get(H, k)),
                [Stats] = maps:values(ringcache:stats(H)),
                ?assertEqual(1, tls_connections(Stats))
            after
                ringcache_daemon:stop(Revived)
            end
        end)
    end).

bad_options(Dir) ->
    Servers = ["127.0.0.1:1"],
    ?assertEqual({error, {bad_option, tls}}, ringcache:start(Servers, #{tls => verify_peer})),
    ?assertEqual({error, {bad_option, {tls, {active, true}}}},
                 ringcache:start(Servers, #{tls => [{active, true} | client_tls(Dir)]})),
    ?assertEqual({error, {bad_option, {tls, list}}}, ringcache:start(Servers, #{tls => [list]})),
    ?assertEqual({error, {bad_option, {tls, {packet, 4}}}}, ringcache:start(Servers, #{tls => [{packet, 4}]})),
    %% What only ssl can judge (a missing file) makes the server unavailable.
    with_daemons(1, server_args(Dir), fun([D]) ->
        with_handle([ringcache_daemon:address(D)],
                    #{tls => [{verify, verify_peer}, {cacertfile, file(Dir, "missing.pem")}], timeout => 1000},
                    fun(H) -> ?assertEqual({error, unavailable}, ringcache:put(H, k, v)) end)
    end).
