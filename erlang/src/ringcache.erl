%% Client for ringcached (erlang/README.md): any Erlang terms as keys and values,
%% spread over servers by consistent hashing, one pipelined connection per
%% server shared by every process that uses the handle.
%%
%% Wire encoding of a key: <<PrefixLength:8, Prefix, KeyTerm>> where KeyTerm
%% is term_to_binary(K, [deterministic, {minor_version, 2}]), so equal
%% terms give equal bytes on every node, and Prefix is 16 random bytes per
%% start/1 or the namespace given to start/2. The length byte keeps one
%% namespace from ever being a prefix of another's keys.
%%
%% Every call has a deadline (option `timeout`, default 5 s) covering the
%% failover through a replica list. A server is only failed over on
%% `unavailable` (nothing was sent, or the connection died); after a
%% `timeout` the request may still be applied, so it is reported instead.
-module(ringcache).

-export([start/1, start/2, put/3, get/2, del/2, get_multi/2, stats/1, status/1, stop/1]).
-export_type([handle/0, server_spec/0, reason/0]).

-ifdef(TEST).
-export([percentages/2]).
-endif.

-define(call_timeout_ms_default, 5000).
-define(namespace_bytes_max, 255).
%% The daemon's limit on AUTH's user and password (binary_parser.h).
-define(auth_field_bytes_max, 1024).
-define(unique_prefix_bytes, 16).
%% start/2 waits this long at most for the first connection attempts; a
%% server still undecided by then is simply retried in the background.
-define(start_wait_ms_max, 3000).

-record(handle, {pid :: pid(),
                 conns :: ets:tid(),
                 keys :: ets:tid(),
                 ring :: ringcache_ring:ring(),
                 prefix :: binary(),
                 timeout_ms :: pos_integer(),
                 %% Per server list element: {Name, [ReplicaName, ...]}.
                 groups :: tuple()}).
-opaque handle() :: #handle{}.

-type server_spec() :: string() | binary() | {inet:hostname() | inet:ip_address(), inet:port_number()}
                     | [string() | binary() | {inet:hostname() | inet:ip_address(), inet:port_number()}].
-type reason() :: unavailable | too_big | server_error | timeout | auth_refused.
-type options() :: #{namespace => binary(), timeout => pos_integer(),
                     auth => {User :: iodata(), Password :: iodata()},
                     tls => [ssl:tls_client_option()]}.

%% ---------------------------------------------------------------- start/stop

-spec start([server_spec(), ...]) -> {ok, handle()} | {error, term()}.
start(Servers) ->
    start(Servers, #{}).

-spec start([server_spec(), ...], options()) -> {ok, handle()} | {error, term()}.
start(Servers, Options) ->
    case {ringcache_addr:parse_servers(Servers), parse_options(Options)} of
        {{ok, Groups}, {ok, Prefix, TimeoutMs, ConnOptions}} ->
            Names = [ringcache_addr:group_name(Group) || Group <- Groups],
            Ring = ringcache_ring:new(Names),
            case ringcache_handle:start(self(), Groups, ConnOptions) of
                {ok, Pid, Conns, Keys} ->
                    H = #handle{pid = Pid, conns = Conns, keys = Keys, ring = Ring,
                                prefix = Prefix, timeout_ms = TimeoutMs,
                                groups = list_to_tuple(
                                           [{Name, [ReplicaName || #{name := ReplicaName} <- Group]}
                                            || {Name, Group} <- lists:zip(Names, Groups)])},
                    await_first_attempts(H),
                    {ok, H};
                {error, _} = Error ->
                    Error
            end;
        {{error, _} = Error, _} -> Error;
        {_, {error, _} = Error} -> Error
    end.

parse_options(Options) when is_map(Options) ->
    case {parse_prefix_and_timeout(Options), parse_auth(maps:get(auth, Options, undefined)),
          parse_tls(maps:get(tls, Options, undefined))} of
        {{ok, Prefix, TimeoutMs}, {ok, Auth}, {ok, Tls}} ->
            {ok, Prefix, TimeoutMs, #{auth => Auth, tls => Tls}};
        {{error, _} = Error, _, _} -> Error;
        {_, {error, _} = Error, _} -> Error;
        {_, _, {error, _} = Error} -> Error
    end;
parse_options(Options) ->
    {error, {bad_option, Options}}.

parse_prefix_and_timeout(Options) ->
    Namespace = maps:get(namespace, Options, undefined),
    TimeoutMs = maps:get(timeout, Options, ?call_timeout_ms_default),
    case maps:keys(maps:without([namespace, timeout, auth, tls], Options)) of
        [Unknown | _] ->
            {error, {bad_option, Unknown}};
        [] when not (is_integer(TimeoutMs) andalso TimeoutMs > 0) ->
            {error, {bad_option, {timeout, TimeoutMs}}};
        [] when Namespace =:= undefined ->
            {ok, key_prefix(crypto:strong_rand_bytes(?unique_prefix_bytes)), TimeoutMs};
        [] when is_binary(Namespace), byte_size(Namespace) =< ?namespace_bytes_max ->
            {ok, key_prefix(Namespace), TimeoutMs};
        [] ->
            {error, {bad_option, {namespace, Namespace}}}
    end.

%% A user and password for the daemon's --auth-file (docs/binary_protocol.md,
%% "Authentication"): each 1 to auth_field_bytes_max bytes, sent at every
%% (re)connection. The password is not kept in the error of a bad option.
parse_auth(undefined) ->
    {ok, undefined};
parse_auth({User, Password} = Auth) ->
    try {iolist_to_binary(User), iolist_to_binary(Password)} of
        {U, P} when byte_size(U) >= 1, byte_size(U) =< ?auth_field_bytes_max,
                    byte_size(P) >= 1, byte_size(P) =< ?auth_field_bytes_max ->
            {ok, {U, P}};
        _ ->
            {error, {bad_option, {auth, element(1, Auth)}}}
    catch
        error:badarg -> {error, {bad_option, {auth, User}}}
    end;
parse_auth(_Other) ->
    {error, {bad_option, auth}}.

%% ssl's client options (erlang/README.md, "TLS"): every connection does a
%% TLS handshake with them. The ssl application is started here, once,
%% rather than made a dependency of every user of plain TCP.
parse_tls(undefined) ->
    {ok, undefined};
parse_tls(Tls) ->
    case ringcache_transport:check_tls_options(Tls) of
        ok ->
            case application:ensure_all_started(ssl) of
                {ok, _Started} -> {ok, Tls};
                {error, Reason} -> {error, {ssl_not_started, Reason}}
            end;
        {error, Reason} ->
            {error, {bad_option, Reason}}
    end.

key_prefix(Prefix) -> <<(byte_size(Prefix)):8, Prefix/binary>>.

%% Whatever each answers, start succeeds: a server that is down or
%% undecided is retried in the background.
await_first_attempts(#handle{conns = Conns}) ->
    ringcache_conn:await_ready([Pid || {_Slot, Pid} <- ets:tab2list(Conns)], ?start_wait_ms_max).

-spec stop(handle()) -> ok.
stop(#handle{pid = Pid}) ->
    ringcache_handle:stop(Pid).

%% ---------------------------------------------------------------- single keys

-spec put(handle(), term(), term()) -> ok | {error, reason()}.
put(H, K, V) ->
    Key = encode_key(H, K),
    case route(H, Key, {put, Key, term_to_binary(V)}) of
        ok -> ok;
        {error, _} = Error -> Error
    end.

-spec get(handle(), term()) -> {ok, term()} | enotfound | {error, reason()}.
get(H, K) ->
    Key = encode_key(H, K),
    case route(H, Key, {get, Key}) of
        {ok, Value} -> decode_value(Value);
        enotfound -> enotfound;
        {error, _} = Error -> Error
    end.

-spec del(handle(), term()) -> ok | enotfound | {error, reason()}.
del(H, K) ->
    Key = encode_key(H, K),
    case route(H, Key, {del, Key}) of
        ok -> ok;
        enotfound -> enotfound;
        {error, _} = Error -> Error
    end.

encode_key(#handle{prefix = Prefix}, K) ->
    <<Prefix/binary, (term_to_binary(K, [deterministic, {minor_version, 2}]))/binary>>.

%% A value this client did not write (another client, another encoding)
%% is reported as the server's error, never raised in the caller.
decode_value(Bin) ->
    try binary_to_term(Bin) of
        Term -> {ok, Term}
    catch
        error:badarg -> {error, server_error}
    end.

route(#handle{ring = Ring, timeout_ms = TimeoutMs} = H, Key, Request) ->
    Group = ringcache_ring:lookup(Ring, Key),
    try_replicas(H, Group, 1, Request, deadline(TimeoutMs)).

try_replicas(H, Group, Replica, Request, Deadline) ->
    Reply = case {remaining_ms(Deadline), conn(H, Group, Replica)} of
                {0, _} -> {error, timeout};
                {_, none} -> {error, unavailable};
                {Remaining, {ok, Conn}} -> ringcache_conn:request(Conn, Request, Remaining)
            end,
    case Reply =:= {error, unavailable} andalso Replica < replica_count(H, Group) of
        true -> try_replicas(H, Group, Replica + 1, Request, Deadline);
        false -> Reply
    end.

%% The table is gone once the handle is stopped.
conn(#handle{conns = Conns}, Group, Replica) ->
    try ets:lookup_element(Conns, {Group, Replica}, 2) of
        Pid -> {ok, Pid}
    catch
        error:badarg -> none
    end.

send_request(H, Group, Replica, Request) ->
    case conn(H, Group, Replica) of
        {ok, Conn} -> ringcache_conn:send_request(Conn, Request);
        none -> {error, unavailable}
    end.

replica_count(#handle{groups = Groups}, Group) ->
    {_Name, Replicas} = element(Group, Groups),
    length(Replicas).

deadline(TimeoutMs) -> erlang:monotonic_time(millisecond) + TimeoutMs.

remaining_ms(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% ---------------------------------------------------------------- get_multi

%% Every key's GET is written before any reply is awaited, so the servers
%% work in parallel and each connection pipelines its share.
-spec get_multi(handle(), [term()]) -> #{term() => term()}.
get_multi(#handle{ring = Ring, timeout_ms = TimeoutMs} = H, Ks) when is_list(Ks) ->
    Wanted = maps:from_list([{encode_key(H, K), K} || K <- Ks]),
    Items = [{Key, K, ringcache_ring:lookup(Ring, Key), 1} || {Key, K} <- maps:to_list(Wanted)],
    get_multi_round(H, Items, deadline(TimeoutMs), #{}).

get_multi_round(_H, [], _Deadline, Found) ->
    Found;
get_multi_round(H, Items, Deadline, Found) ->
    Sent = [{Item, send_request(H, Group, Replica, {get, Key})}
            || {Key, _K, Group, Replica} = Item <- Items],
    {Found1, Retry} = lists:foldl(fun(Sent1, Acc) -> get_multi_reply(H, Sent1, Deadline, Acc) end,
                                  {Found, []}, Sent),
    get_multi_round(H, Retry, Deadline, Found1).

get_multi_reply(H, {{Key, K, Group, Replica}, Sent}, Deadline, {Found, Retry}) ->
    Reply = case Sent of
                {pending, RequestId} -> ringcache_conn:receive_response(RequestId, remaining_ms(Deadline));
                {error, _} = Error -> Error
            end,
    case Reply of
        {ok, Bin} ->
            case decode_value(Bin) of
                {ok, V} -> {Found#{K => V}, Retry};
                {error, _} -> {Found, Retry}
            end;
        {error, unavailable} ->
            case Replica < replica_count(H, Group) of
                true -> {Found, [{Key, K, Group, Replica + 1} | Retry]};
                false -> {Found, Retry}
            end;
        _MissingOrFailed ->
            {Found, Retry}
    end.

%% ---------------------------------------------------------------- stats, status

%% Every reachable server's STATS (all replicas); servers that do not
%% answer are left out.
-spec stats(handle()) -> #{string() => #{binary() => integer()}}.
stats(#handle{groups = Groups, timeout_ms = TimeoutMs} = H) ->
    Deadline = deadline(TimeoutMs),
    Sent = [{binary_to_list(Name), send_request(H, Group, Replica, stats)}
            || {Group, {_GroupName, Replicas}} <- lists:enumerate(tuple_to_list(Groups)),
               {Replica, Name} <- lists:enumerate(Replicas)],
    maps:from_list(
      [{Name, ringcache_codec:parse_stats(Text)}
       || {Name, {pending, RequestId}} <- Sent,
          {ok, Text} <- [ringcache_conn:receive_response(RequestId, remaining_ms(Deadline))]]).

%% "Total 57 keys: 35% host1:8889, 43% host2:8889, 22% host3:8889": the keys
%% this handle stored and has not seen deleted or missing, per server.
%% Percentages are rounded so that they add up to 100.
-spec status(handle()) -> string().
status(#handle{keys = Keys, groups = Groups}) ->
    Counts = try ets:foldl(fun({_Key, Group}, Acc) -> maps:update_with(Group, fun(N) -> N + 1 end, 1, Acc) end,
                           #{}, Keys)
             catch
                 error:badarg -> erlang:error(handle_stopped)
             end,
    GroupCounts = [maps:get(Group, Counts, 0) || Group <- lists:seq(1, tuple_size(Groups))],
    Total = lists:sum(GroupCounts),
    Parts = [io_lib:format("~b% ~s", [Percent, Name])
             || {Percent, {Name, _}} <- lists:zip(percentages(GroupCounts, Total), tuple_to_list(Groups))],
    Text = lists:flatten(io_lib:format("Total ~b keys: ~s", [Total, lists:join(", ", Parts)])),
    io:format("~s~n", [Text]),
    Text.

%% Largest remainder: floors first, then the missing points to the largest
%% fractions.
percentages(Counts, 0) ->
    [0 || _ <- Counts];
percentages(Counts, Total) ->
    Floors = [Count * 100 div Total || Count <- Counts],
    Missing = 100 - lists:sum(Floors),
    ByFraction = lists:sort(fun({A, _}, {B, _}) -> A >= B end,
                            [{Count * 100 rem Total, Index} || {Index, Count} <- lists:enumerate(Counts)]),
    Bumped = [Index || {_, Index} <- lists:sublist(ByFraction, Missing)],
    [case lists:member(Index, Bumped) of true -> Floor + 1; false -> Floor end
     || {Index, Floor} <- lists:enumerate(Floors)].
