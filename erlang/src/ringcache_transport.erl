%% The one place that knows whether a connection is plain TCP (gen_tcp) or
%% TLS (OTP's ssl): connecting, sending, flow control, statistics, closing
%% and the socket messages each delivers. ringcache_conn sees only the
%% results below.
%%
%% Sending differs, and so does how it is bounded:
%%
%%   tcp  erlang:port_command(Port, Frames, [nosuspend]) refuses (busy)
%%        instead of blocking while the socket's queue is above its high
%%        watermark; the connection keeps the frames and offers them again
%%        later. No extra process, no copy: the fast path.
%%   tls  ssl has no non-blocking send: ssl:send waits for OTP's sender
%%        process, which waits for the TCP socket's queue to drain. Were
%%        the connection process to wait there, it would stop reading
%%        replies (ssl's receiver reads only as far as {active, N} allows),
%%        and a server that stops reading while its replies are not read
%%        would deadlock with it. So a small process owned by the
%%        connection does the ssl:send, one batch at a time: send/2
%%        returns handed_over, and the next batch waits in the connection
%%        (as frames wait behind a busy TCP socket) until the sender says
%%        it is done. What is in flight is thus bounded by one batch here
%%        plus the TCP socket's watermarks below ssl; the frames waiting
%%        in the connection by its pending_requests_max.
-module(ringcache_transport).

-export([connect/5, controlling_process/2, start/2, send/2, activate/2, getstat/2, close/1,
         message/2, check_tls_options/1]).
-export_type([socket/0, tls_options/0]).

-type socket() :: {tcp, gen_tcp:socket()}
                  | {tls, ssl:sslsocket(), Tcp :: gen_tcp:socket(), Sender :: pid() | undefined}.
%% ssl:connect/3's client options, or undefined for plain TCP.
-type tls_options() :: [ssl:tls_client_option()] | undefined.
-type message() :: {data, binary()} | passive | sent | closed | {error, term()} | ignore | not_mine.

%% The options ringcache_conn relies on (binary frames, raw packets, its
%% own {active, N} flow control); a user's TLS options may not change them.
-define(reserved_options, [active, mode, binary, list, packet, packet_size, header,
                           deliver, line_delimiter, exit_on_close]).

%% ---------------------------------------------------------------- options

%% Checks what can be checked before any connection: a list, without
%% options that would change the socket's mode. The rest (files, ciphers)
%% is ssl's to judge at the first connection; a bad value makes every
%% server unavailable, and the reason is logged.
-spec check_tls_options(term()) -> ok | {error, term()}.
check_tls_options(Options) when is_list(Options) ->
    case [Option || Option <- Options, reserved_option(Option)] of
        [] -> ok;
        [Reserved | _] -> {error, {tls, Reserved}}
    end;
check_tls_options(_Other) ->
    {error, tls}.

reserved_option({Name, _Value}) when is_atom(Name) -> lists:member(Name, ?reserved_options);
reserved_option(Name) when is_atom(Name) -> lists:member(Name, ?reserved_options);
reserved_option(_Other) -> true.

%% How long a TLS handshake may take once the TCP connection is up.
-define(tls_handshake_ms_max, 3000).

%% ---------------------------------------------------------------- connecting

%% TCP connect within TimeoutMs, then (tls) the handshake within
%% ?tls_handshake_ms_max more: a handshake costs both ends public-key
%% operations, which a loaded machine can stretch past the connect bound.
%% Called by a helper process: the connection process never waits here.
-spec connect(inet:hostname() | inet:ip_address(), inet:port_number(), [gen_tcp:connect_option()],
              tls_options(), non_neg_integer()) -> {ok, socket()} | {error, term()}.
connect(Host, Port, TcpOptions, Tls, TimeoutMs) ->
    case gen_tcp:connect(Host, Port, TcpOptions, TimeoutMs) of
        {ok, Socket} when Tls =:= undefined ->
            {ok, {tcp, Socket}};
        {ok, Socket} ->
            case ssl:connect(Socket, tls_connect_options(Host, Tls), ?tls_handshake_ms_max) of
                {ok, SslSocket} ->
                    {ok, {tls, SslSocket, Socket, undefined}};
                {error, Reason} ->
                    gen_tcp:close(Socket),
                    {error, {tls_handshake, Reason}}
            end;
        {error, _} = Error ->
            Error
    end.

%% ssl:connect on an open socket checks the certificate against the peer's
%% address; a host name given by the user is what it must name instead
%% (as ssl:connect(Host, ...) would), unless the user chose otherwise.
tls_connect_options(Host, Tls) ->
    Sni = case is_list(Host) andalso not proplists:is_defined(server_name_indication, Tls) of
              true -> [{server_name_indication, Host}];
              false -> []
          end,
    [binary, {active, false}, {packet, raw} | Tls ++ Sni].

-spec controlling_process(socket(), pid()) -> ok | {error, term()}.
controlling_process({tcp, Socket}, Pid) -> gen_tcp:controlling_process(Socket, Pid);
controlling_process({tls, Socket, _Tcp, undefined}, Pid) -> ssl:controlling_process(Socket, Pid).

%% In the owning process, once connected: turns {active, ActiveN} on and
%% (tls) starts the sender, linked to the caller.
-spec start(socket(), pos_integer()) -> {ok, socket()} | {error, term()}.
start({tcp, _} = Socket, ActiveN) ->
    case activate(Socket, ActiveN) of
        ok -> {ok, Socket};
        {error, _} = Error -> Error
    end;
start({tls, SslSocket, Tcp, undefined}, ActiveN) ->
    case ssl:setopts(SslSocket, [{active, ActiveN}]) of
        ok ->
            Owner = self(),
            {ok, {tls, SslSocket, Tcp, spawn_link(fun() -> sender(Owner, SslSocket) end)}};
        {error, _} = Error ->
            Error
    end.

%% ---------------------------------------------------------------- using

%% ok: written (tcp; an error may still come as a message). busy: refused,
%% offer the frames again later. handed_over: the sender has them; send
%% nothing more until message/2 says sent. closed: the socket is gone.
-spec send(socket(), iodata()) -> ok | busy | handed_over | closed.
send({tcp, Socket}, Frames) ->
    try erlang:port_command(Socket, Frames, [nosuspend]) of
        true -> ok;
        false -> busy
    catch
        error:badarg -> closed
    end;
send({tls, _SslSocket, _Tcp, Sender}, Frames) ->
    Sender ! {send, Frames},
    handed_over.

-spec activate(socket(), pos_integer()) -> ok | {error, term()}.
activate({tcp, Socket}, ActiveN) -> inet:setopts(Socket, [{active, ActiveN}]);
activate({tls, Socket, _Tcp, _Sender}, ActiveN) -> ssl:setopts(Socket, [{active, ActiveN}]).

%% The TCP socket's counters (below TLS: encrypted bytes, which is what
%% progress checks need).
-spec getstat(socket(), [inet:stat_option()]) -> {ok, [{inet:stat_option(), integer()}]} | {error, term()}.
getstat({tcp, Socket}, Options) -> inet:getstat(Socket, Options);
getstat({tls, _Socket, Tcp, _Sender}, Options) -> inet:getstat(Tcp, Options).

%% At once, whatever is still queued: gen_tcp:close waits (seconds) for
%% the socket's queue to drain and ssl:close for its close_notify to pass
%% what ssl's sender has not written yet (never, measured); against a
%% server that stopped reading, often the very reason for closing, both
%% held the connection process. erlang:port_close drops the queue; what
%% the kernel already holds still goes, then FIN. TLS: the TCP socket
%% first, so without a close_notify.
-spec close(socket()) -> ok.
close({tcp, Socket}) ->
    close_port(Socket);
close({tls, Socket, Tcp, Sender}) ->
    case Sender of
        undefined -> ok;
        _ -> unlink(Sender), exit(Sender, kill)
    end,
    close_port(Tcp),
    _ = ssl:close(Socket),
    ok.

close_port(Port) ->
    try erlang:port_close(Port) of
        true -> ok
    catch
        error:badarg -> ok
    end.

%% What a message in the owner's mailbox means for Socket. ignore: about
%% this socket, nothing to do; not_mine: about something else.
-spec message(term(), socket()) -> message().
message({tcp, Socket, Data}, {tcp, Socket}) -> {data, Data};
message({tcp_passive, Socket}, {tcp, Socket}) -> passive;
message({inet_reply, Socket, ok}, {tcp, Socket}) -> ignore;
message({inet_reply, Socket, {error, Reason}}, {tcp, Socket}) -> {error, {send, Reason}};
message({tcp_closed, Socket}, {tcp, Socket}) -> closed;
message({tcp_error, Socket, Reason}, {tcp, Socket}) -> {error, Reason};
message({ssl, Socket, Data}, {tls, Socket, _, _}) -> {data, Data};
message({ssl_passive, Socket}, {tls, Socket, _, _}) -> passive;
message({ringcache_sent, Sender, ok}, {tls, _, _, Sender}) -> sent;
%% A failed ssl:send: ssl itself says why ({ssl_error, S, {tls_alert, ...}},
%% {ssl_closed, S}), and that message, not this one (they race), is the
%% reason to report. Should it never come, the next stall check's getstat
%% on the closed socket fails (within stall_check_interval_ms).
message({ringcache_sent, Sender, {error, _Reason}}, {tls, _, _, Sender}) -> ignore;
message({ssl_closed, Socket}, {tls, Socket, _, _}) -> closed;
message({ssl_error, Socket, Reason}, {tls, Socket, _, _}) -> {error, Reason};
message(_Other, _Socket) -> not_mine.

%% One batch at a time, each acknowledged; ends with its owner (linked) or
%% when closed.
sender(Owner, SslSocket) ->
    receive
        {send, Frames} ->
            Result = try ssl:send(SslSocket, Frames)
                     catch Class:Reason -> {error, {Class, Reason}}
                     end,
            Owner ! {ringcache_sent, self(), Result},
            case Result of
                ok -> sender(Owner, SslSocket);
                {error, _} -> ok
            end
    end.
