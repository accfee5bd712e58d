%% One connection to one ringcached server, shared by every process using
%% the handle. Callers' requests are written to the socket as they come
%% (pipelined) and the callers wait in a FIFO: the server answers in
%% request order, so each decoded reply belongs to the oldest entry.
%%
%% The FIFO never loses its alignment with the byte stream: a caller that
%% times out or dies keeps its entry, the late reply is decoded and
%% dropped (gen_server:call's reply alias is gone by then). Anything that
%% could break the alignment (a protocol error, a send error, a stalled
%% server) closes the socket and fails every waiting caller at once.
%%
%% Phases:
%%   connecting  a helper process connects (and with option tls does the
%%               TLS handshake; ringcache_transport), so callers are never
%%               stuck behind a slow connect
%%   probing     connected; with credentials (option auth) an AUTH goes
%%               first, then a STATS request must come back before the
%%               server is trusted (a stopped process still completes TCP
%%               handshakes from the listen backlog). A refused AUTH closes
%%               the connection, and until a later attempt succeeds callers
%%               get {error, auth_refused} rather than unavailable.
%%   connected   requests accepted
%%   backoff     waiting before the next attempt, doubling each failure
%% Outside `connected` requests get {error, unavailable} at once.
%%
%% The connection also keeps the handle's key table (status/1 in erlang/README.md)
%% current, here and not in the callers, so updates follow the server's
%% order even when callers time out.
-module(ringcache_conn).
-behaviour(gen_server).

-export([start_link/4, request/3, send_request/2, receive_response/2, await_ready/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("stdlib/include/assert.hrl").
-include_lib("kernel/include/logger.hrl").

%% Requests written and not yet answered; beyond it callers get
%% {error, unavailable} instead of growing the queue without bound.
-define(pending_requests_max, 100000).
%% TCP connect (the TLS handshake has its own bound, ringcache_transport).
-define(connect_timeout_ms, 1000).
%% The probe must be answered this fast, or the server counts as down.
-define(probe_reply_ms_max, 1000).
%% With requests outstanding and no reply byte arriving (nor queued output
%% draining) for this long, the server is taken for hung and the
%% connection is closed.
-define(reply_stall_ms_max, 3000).
-define(stall_check_interval_ms, 250).
-define(reconnect_backoff_ms_min, 100).
-define(reconnect_backoff_ms_max, 5000).
%% Output queued in the socket above which it counts as busy: further
%% frames wait in the process and are offered again every
%% send_retry_interval_ms, never blocking the process (which must keep
%% reading replies, or a server that stops reading while its replies are
%% not read would deadlock with us).
-define(send_queue_bytes_high, 4194304).
-define(send_queue_bytes_low, 2097152).
-define(send_retry_interval_ms, 2).
%% Frames held back to be written together, at most.
-define(send_batch_bytes_max, 65536).
%% Socket messages delivered before the socket turns passive and waits for
%% the process to ask for more: flow control without a setopts per packet.
-define(socket_active_messages, 32).
%% The most one socket read takes. gen_tcp's default (1460) made a 300 MiB
%% GET take 215,707 reads and 1.2 s; 1 MiB: 318 reads and 0.11 s.
-define(socket_read_bytes_max, 262144).

-type phase() :: connecting | probing | connected | backoff.
-type waiter() :: {gen_server:from(), ringcache_codec:kind(), binary() | none}
                | probe | auth.
-type credentials() :: {User :: binary(), Password :: binary()} | undefined.
-type options() :: #{auth := credentials(), tls := ringcache_transport:tls_options()}.
-export_type([credentials/0, options/0]).

-record(state, {server :: ringcache_addr:server(),
                group :: pos_integer(),
                keys :: ets:tid(),
                auth :: credentials(),
                tls :: ringcache_transport:tls_options(),
                %% What callers are told while the server is not usable.
                down_reason = unavailable :: unavailable | auth_refused,
                phase = connecting :: phase(),
                socket :: ringcache_transport:socket() | undefined,
                connector :: {pid(), reference()} | undefined,
                pending = queue:new() :: queue:queue(waiter()),
                pending_count = 0 :: non_neg_integer(),
                %% Frames of pending requests not written yet, newest first.
                out = [] :: [iodata()],
                out_bytes = 0 :: non_neg_integer(),
                %% The socket was busy; a send_retry message is on its way.
                send_retry = false :: boolean(),
                decoder = ringcache_codec:decoder_new() :: ringcache_codec:decoder(),
                backoff_ms = ?reconnect_backoff_ms_min :: pos_integer(),
                %% Callers of await_ready/2 until the first attempt ends.
                ready_waiters = [] :: [gen_server:from()],
                first_attempt_done = false :: boolean(),
                was_up = false :: boolean(),
                phase_since_ms = 0 :: integer(),
                progress_ms = 0 :: integer(),
                %% {recv_oct, send_oct} at the last stall check.
                progress_octets :: {non_neg_integer(), non_neg_integer()} | undefined,
                tick :: reference() | undefined}).

%% ---------------------------------------------------------------- API

%% Group is the server's position in the handle's server list; it is what
%% the key table records for status/1. Options: auth, the credentials sent
%% at every (re)connection, or undefined; tls, ssl's client options, or
%% undefined for plain TCP.
-spec start_link(ringcache_addr:server(), pos_integer(), ets:tid(), options()) -> {ok, pid()}.
start_link(Server, Group, KeysTable, Options) ->
    gen_server:start_link(?MODULE, {Server, Group, KeysTable, Options}, []).

-spec request(pid(), ringcache_codec:request(), timeout()) ->
          ringcache_codec:reply() | {error, unavailable | timeout}.
request(Conn, Request, Timeout) ->
    case request_message(Request) of
        {ok, Message} ->
            try gen_server:call(Conn, Message, Timeout)
            catch
                exit:{timeout, _} -> {error, timeout};
                exit:_ -> {error, unavailable}
            end;
        {error, too_big} = Error ->
            Error
    end.

%% request/3 in two halves, so one process can have many requests in
%% flight on many connections (get_multi).
-spec send_request(pid(), ringcache_codec:request()) ->
          {pending, gen_server:request_id()} | {error, too_big}.
send_request(Conn, Request) ->
    case request_message(Request) of
        {ok, Message} -> {pending, gen_server:send_request(Conn, Message)};
        {error, too_big} = Error -> Error
    end.

-spec receive_response(gen_server:request_id(), timeout()) ->
          ringcache_codec:reply() | {error, unavailable | timeout}.
receive_response(RequestId, Timeout) ->
    case gen_server:receive_response(RequestId, Timeout) of
        {reply, Reply} -> Reply;
        timeout -> {error, timeout};
        {error, {_Reason, _Conn}} -> {error, unavailable}
    end.

%% Returns once every connection's first attempt has succeeded or failed,
%% or after TimeoutMs; in parallel, so start/1 costs the slowest server.
-spec await_ready([pid()], non_neg_integer()) -> ok.
await_ready(Conns, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    Requests = [gen_server:send_request(Conn, await_ready) || Conn <- Conns],
    lists:foreach(fun(Request) ->
                          Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
                          _ = gen_server:receive_response(Request, Left)
                  end, Requests).

request_message(Request) ->
    case ringcache_codec:encode(Request) of
        {ok, Frame} -> {ok, {request, request_kind(Request), request_key(Request), Frame}};
        {error, too_big} = Error -> Error
    end.

request_kind(stats) -> stats;
request_kind({auth, _User, _Password}) -> auth;
request_kind(Request) -> element(1, Request).

request_key(stats) -> none;
request_key(Request) -> element(2, Request).

%% ---------------------------------------------------------------- gen_server

-spec init({ringcache_addr:server(), pos_integer(), ets:tid(), options()}) -> {ok, #state{}}.
init({Server, Group, KeysTable, #{auth := Auth, tls := Tls}}) ->
    State = #state{server = Server, group = Group, keys = KeysTable, auth = Auth, tls = Tls},
    {ok, start_connector(State)}.

-spec handle_call(term(), gen_server:from(), #state{}) ->
          {reply, term(), #state{}} | {reply, term(), #state{}, 0}
        | {noreply, #state{}} | {noreply, #state{}, 0}.
handle_call(Message, From, S) ->
    flush_when_idle(call(Message, From, S)).

-spec handle_cast(term(), #state{}) -> {noreply, #state{}} | {noreply, #state{}, 0}.
handle_cast(_Unknown, S) ->
    flush_when_idle({noreply, S}).

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {noreply, #state{}, 0}.
handle_info(timeout, S) ->
    {noreply, flush(S)};
handle_info(Message, S) ->
    flush_when_idle({noreply, info(Message, S)}).

call({request, _Kind, _Key, _Frame}, _From, #state{phase = Phase, down_reason = Reason} = S)
  when Phase =/= connected ->
    {reply, {error, Reason}, S};
call({request, _Kind, _Key, _Frame}, _From, #state{pending_count = Count} = S)
  when Count >= ?pending_requests_max ->
    {reply, {error, unavailable}, S};
call({request, Kind, Key, Frame}, From, S) ->
    {noreply, buffer_frame(Frame, enqueue({From, Kind, Key}, S))};
call(await_ready, From, #state{first_attempt_done = false, ready_waiters = Waiters} = S) ->
    {noreply, S#state{ready_waiters = [From | Waiters]}};
call(await_ready, _From, S) ->
    {reply, ok, S};
call(_Unknown, _From, S) ->
    {reply, {error, unknown_call}, S}.

%% The socket's own messages first: they are most of the traffic.
info(Message, #state{socket = Socket, decoder = Decoder} = S) when Socket =/= undefined ->
    case ringcache_transport:message(Message, Socket) of
        {data, Data} -> deliver_replies(S#state{decoder = ringcache_codec:decoder_feed(Decoder, Data)});
        passive -> rearm(S);
        sent -> flush(S#state{send_retry = false});
        ignore -> S;
        closed -> connection_lost(closed, S);
        {error, {tls_alert, _} = Alert} when S#state.phase =:= probing ->
            %% TLS 1.3: the server judges the client's certificate after
            %% the client's side of the handshake is done.
            connection_lost({tls_handshake, Alert}, S);
        {error, Reason} -> connection_lost(Reason, S);
        not_mine -> other_info(Message, S)
    end;
info(Message, S) ->
    other_info(Message, S).

other_info(send_retry, S) ->
    flush(S#state{send_retry = false});
other_info({connector, Pid, Result}, #state{connector = {Pid, Ref}} = S) ->
    demonitor(Ref, [flush]),
    connect_finished(Result, S#state{connector = undefined});
other_info({connector, _StalePid, {ok, Socket}}, S) ->
    ringcache_transport:close(Socket),
    S;
other_info({'DOWN', Ref, process, Pid, Reason}, #state{connector = {Pid, Ref}} = S) ->
    connect_finished({error, {connector_crashed, Reason}}, S#state{connector = undefined});
other_info(reconnect, #state{phase = backoff} = S) ->
    start_connector(S);
other_info({tick, Ref}, #state{tick = Ref} = S) ->
    check_progress(S#state{tick = undefined});
other_info(_Stale, S) ->
    %% Messages of a closed socket, an old timer, a late connector.
    S.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{socket = undefined}) -> ok;
terminate(_Reason, #state{socket = Socket}) -> ringcache_transport:close(Socket).

%% ---------------------------------------------------------------- connecting

start_connector(#state{server = #{host := Host, port := Port}, tls = Tls} = S) ->
    Owner = self(),
    Connector = spawn_monitor(fun() -> connect(Owner, Host, Port, Tls) end),
    S#state{phase = connecting, connector = Connector}.

connect(Owner, Host, Port, Tls) ->
    Options = [binary, {packet, raw}, {active, false}, {nodelay, true}, {keepalive, true},
               {high_watermark, ?send_queue_bytes_high}, {low_watermark, ?send_queue_bytes_low},
               {buffer, ?socket_read_bytes_max}],
    Result = case ringcache_transport:connect(Host, Port, Options, Tls, ?connect_timeout_ms) of
                 {ok, Socket} ->
                     case ringcache_transport:controlling_process(Socket, Owner) of
                         ok -> {ok, Socket};
                         {error, _} = Error ->
                             ringcache_transport:close(Socket),
                             Error
                     end;
                 {error, _} = Error ->
                     Error
             end,
    Owner ! {connector, self(), Result}.

connect_finished({ok, Socket0}, S) ->
    case ringcache_transport:start(Socket0, ?socket_active_messages) of
        {ok, Socket} ->
            {ok, Probe} = ringcache_codec:encode(stats),
            S1 = S#state{socket = Socket, phase = probing, phase_since_ms = now_ms(),
                         decoder = ringcache_codec:decoder_new()},
            start_tick(flush(buffer_frame(Probe, enqueue(probe, send_auth(S1)))));
        {error, Reason} ->
            ringcache_transport:close(Socket0),
            attempt_failed({setopts, Reason}, S)
    end;
connect_finished({error, Reason}, S) ->
    attempt_failed(Reason, S).

attempt_failed(Reason, #state{backoff_ms = Backoff, was_up = WasUp, first_attempt_done = Done} = S) ->
    %% Logged when the server goes away, not at every retry.
    case WasUp orelse not Done of
        true -> log_attempt_failed(Reason, S);
        false -> ok
    end,
    Delay = Backoff + rand:uniform(Backoff div 4 + 1) - 1,
    erlang:send_after(Delay, self(), reconnect),
    ready(S#state{phase = backoff, was_up = false,
                  backoff_ms = min(Backoff * 2, ?reconnect_backoff_ms_max)}).

%% A refused handshake is most likely a configuration to fix (CA, client
%% certificate, host name), not a server that is down: said so.
log_attempt_failed({tls_handshake, Reason}, S) ->
    ?LOG_WARNING("ringcache: ~s: TLS handshake failed: ~p", [server_name(S), Reason]);
log_attempt_failed(Reason, S) ->
    ?LOG_NOTICE("ringcache: ~s unreachable: ~p", [server_name(S), Reason]).

%% AUTH before anything else, on every connection (the daemon answers
%% every other request EINVAL until then).
send_auth(#state{auth = undefined} = S) ->
    S;
send_auth(#state{auth = {User, Password}} = S) ->
    {ok, Frame} = ringcache_codec:encode({auth, User, Password}),
    buffer_frame(Frame, enqueue(auth, S)).

probe_answered(#state{first_attempt_done = Done} = S) ->
    case Done of
        true -> ?LOG_NOTICE("ringcache: ~s is back", [server_name(S)]);
        false -> ok
    end,
    ready(S#state{phase = connected, phase_since_ms = now_ms(), was_up = true, down_reason = unavailable,
                  backoff_ms = ?reconnect_backoff_ms_min}).

ready(#state{ready_waiters = Waiters} = S) ->
    [gen_server:reply(From, ok) || From <- Waiters],
    S#state{ready_waiters = [], first_attempt_done = true}.

%% Every waiting caller learns at once; the next attempt comes quickly
%% after a connection that was working, later after repeated failures.
connection_lost(Reason, #state{socket = Socket, pending = Pending} = S) ->
    ringcache_transport:close(Socket),
    DownReason = case Reason of
                     auth_refused -> auth_refused;
                     _ -> unavailable
                 end,
    [gen_server:reply(From, {error, unavailable}) || {From, _, _} <- queue:to_list(Pending)],
    attempt_failed(Reason, S#state{socket = undefined, down_reason = DownReason,
                                   pending = queue:new(), pending_count = 0,
                                   out = [], out_bytes = 0, send_retry = false,
                                   decoder = ringcache_codec:decoder_new(), tick = undefined,
                                   progress_octets = undefined}).

server_name(#state{server = #{name := Name}}) -> Name.

%% ---------------------------------------------------------------- sending

%% Requests are written in batches: a frame waits while more messages are
%% queued (timeout 0 fires once the mailbox is empty), so 50 callers cost
%% one send, not 50. The wait is bounded by send_batch_bytes_max.
buffer_frame(Frame, #state{out = Out, out_bytes = OutBytes} = S) ->
    S1 = S#state{out = [Frame | Out], out_bytes = OutBytes + iolist_size(Frame)},
    case S1#state.out_bytes >= ?send_batch_bytes_max of
        true -> flush(S1);
        false -> S1
    end.

%% Never waits (ringcache_transport, at the top): a busy TCP socket
%% refuses the frames, which are offered again send_retry_interval_ms
%% later; TLS hands them to its sender and sends nothing more until the
%% sender is done. Either way send_retry holds further flushes until the
%% message that says to try again (send_retry, or the transport's sent).
flush(#state{out = []} = S) ->
    S;
flush(#state{send_retry = true} = S) ->
    S;
flush(#state{socket = Socket, out = Out} = S) ->
    case ringcache_transport:send(Socket, lists:reverse(Out)) of
        ok ->
            S#state{out = [], out_bytes = 0};
        busy ->
            erlang:send_after(?send_retry_interval_ms, self(), send_retry),
            S#state{send_retry = true};
        handed_over ->
            S#state{out = [], out_bytes = 0, send_retry = true};
        closed ->
            connection_lost({send, closed}, S)
    end.

flush_when_idle({reply, Reply, #state{out = [_ | _], send_retry = false} = S}) -> {reply, Reply, S, 0};
flush_when_idle({noreply, #state{out = [_ | _], send_retry = false} = S}) -> {noreply, S, 0};
flush_when_idle(Result) -> Result.

%% ---------------------------------------------------------------- replies

enqueue(Waiter, #state{pending = Pending, pending_count = Count} = S) ->
    S#state{pending = queue:in(Waiter, Pending), pending_count = Count + 1}.

deliver_replies(#state{pending = Pending, decoder = Decoder} = S) ->
    case queue:peek(Pending) of
        empty ->
            case ringcache_codec:decoder_buffered_bytes(Decoder) of
                0 -> S;
                Bytes -> connection_lost({unsolicited_bytes, Bytes}, S)
            end;
        {value, Waiter} ->
            case ringcache_codec:decoder_next(Decoder, waiter_kind(Waiter)) of
                {reply, Reply, Decoder1} ->
                    ?assert(S#state.pending_count > 0),
                    S1 = S#state{pending = queue:drop(Pending), decoder = Decoder1,
                                 pending_count = S#state.pending_count - 1},
                    case deliver(Waiter, Reply, S1) of
                        {ok, S2} -> deliver_replies(S2);
                        {error, Reason} -> connection_lost(Reason, S1)
                    end;
                {more, Decoder1} ->
                    S#state{decoder = Decoder1};
                {error, ProtocolError} ->
                    connection_lost({protocol_error, ProtocolError}, S)
            end
    end.

waiter_kind(probe) -> stats;
waiter_kind(auth) -> auth;
waiter_kind({_From, Kind, _Key}) -> Kind.

deliver(auth, ok, #state{phase = probing} = S) ->
    {ok, S};
deliver(auth, {error, auth_refused}, S) ->
    ?LOG_WARNING("ringcache: ~s refused AUTH: wrong user or password (or it has no --auth-file)",
                 [server_name(S)]),
    {error, auth_refused};
deliver(auth, Reply, _S) ->
    {error, {auth_failed, Reply}};
deliver(probe, {ok, _StatsText}, #state{phase = probing} = S) ->
    {ok, probe_answered(S)};
deliver(probe, Reply, _S) ->
    {error, {probe_failed, Reply}};
deliver({From, Kind, Key}, Reply, S) ->
    track_key(Kind, Key, Reply, S),
    gen_server:reply(From, Reply),
    {ok, S}.

%% What status/1 counts: keys this handle stored and has not seen go.
track_key(put, Key, ok, #state{keys = Keys, group = Group}) ->
    ets:insert(Keys, {Key, Group});
track_key(del, Key, _OkOrNotFound, #state{keys = Keys}) ->
    ets:delete(Keys, Key);
track_key(get, Key, enotfound, #state{keys = Keys}) ->
    ets:delete(Keys, Key);
track_key(_Kind, _Key, _Reply, _S) ->
    true.

rearm(#state{socket = undefined} = S) ->
    S;
rearm(#state{socket = Socket} = S) ->
    case ringcache_transport:activate(Socket, ?socket_active_messages) of
        ok -> S;
        {error, Reason} -> connection_lost({setopts, Reason}, S)
    end.

%% ---------------------------------------------------------------- stalls

start_tick(S) ->
    Ref = make_ref(),
    erlang:send_after(?stall_check_interval_ms, self(), {tick, Ref}),
    S#state{tick = Ref}.

check_progress(#state{socket = undefined} = S) ->
    S;
check_progress(#state{phase = probing, phase_since_ms = Since} = S) ->
    case now_ms() - Since > ?probe_reply_ms_max of
        true -> connection_lost(probe_timeout, S);
        false -> start_tick(S)
    end;
%% Progress is a reply byte arriving, or output that was queued behind a
%% full socket moving on (a large PUT on its way). Newly written requests
%% are not progress: a stopped server's socket buffers take them for a
%% while, and they must not keep a hung connection alive.
check_progress(#state{socket = Socket, pending_count = Count, progress_octets = Last,
                      progress_ms = LastMs} = S) ->
    Now = now_ms(),
    case ringcache_transport:getstat(Socket, [recv_oct, send_oct, send_pend]) of
        {ok, Stats} ->
            Octets = {proplists:get_value(recv_oct, Stats), proplists:get_value(send_oct, Stats)},
            Draining = proplists:get_value(send_pend, Stats) > 0,
            Moved = case {Octets, Last} of
                        {{Recv, _}, {LastRecv, _}} when Recv =/= LastRecv -> true;
                        {{_, Sent}, {_, LastSent}} when Draining, Sent =/= LastSent -> true;
                        {_, undefined} -> true;
                        _ -> false
                    end,
            if
                Count =:= 0; Moved -> start_tick(S#state{progress_octets = Octets, progress_ms = Now});
                Now - LastMs > ?reply_stall_ms_max -> connection_lost(reply_stalled, S);
                true -> start_tick(S#state{progress_octets = Octets})
            end;
        {error, Reason} ->
            connection_lost({getstat, Reason}, S)
    end.

now_ms() -> erlang:monotonic_time(millisecond).
