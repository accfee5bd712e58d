%% The ringcached binary protocol (docs/binary_protocol.md) as pure functions of bytes: no
%% sockets, no processes, so every frame can be tested whole and split at
%% every byte.
%%
%%   request  = opcode:8 field*         field = length:32/big bytes
%%   PUT   11 key value      DEL 12 key      GET 13 key      STATS 21
%%   AUTH  31 user password  (a daemon with --auth-file; OK or EINVAL)
%%   reply = code:8 [field]  (a field follows 101 only for GET and STATS)
%%
%% A reply does not say which request it answers: replies come back in
%% request order, so the caller passes the kind of the oldest outstanding
%% request to decoder_next/2.
%%
%% The decoder keeps the bytes received so far as a flat head plus a list
%% of later chunks, and only joins them once enough bytes for the next
%% reply are there: a value of hundreds of MiB arriving in 64 KiB packets
%% is copied once, not once per packet.
-module(ringcache_codec).

-export([encode/1,
         decoder_new/0, decoder_feed/2, decoder_next/2, decoder_buffered_bytes/1,
         parse_stats/1]).

-export_type([request/0, kind/0, reply/0, protocol_error/0, decoder/0]).

-include_lib("stdlib/include/assert.hrl").

-define(op_put, 11).
-define(op_del, 12).
-define(op_get, 13).
-define(op_stats, 21).
-define(op_auth, 31).

-define(code_ok, 101).
-define(code_einval, 111).
-define(code_enotfound, 112).
-define(code_ebinary, 113).
-define(code_ebig, 114).
-define(code_eunk, 115).

%% The length prefix is 32 bits: nothing longer can be framed.
-define(field_bytes_max, 16#FFFFFFFF).

%% A reply left over after a large read is copied out when the buffer it
%% points into is this much bigger, so one big value is not kept alive by
%% a few trailing bytes.
-define(leftover_copy_bytes_min, 65536).

-type request() :: {put, Key :: binary(), Value :: binary()}
                 | {del, Key :: binary()}
                 | {get, Key :: binary()}
                 | stats
                 | {auth, User :: binary(), Password :: binary()}.
-type kind() :: put | del | get | stats | auth.
-type reply() :: ok | {ok, binary()} | enotfound | {error, too_big | server_error | auth_refused}.
%% The stream can no longer be trusted: the connection must be closed.
-type protocol_error() :: {einval, kind()}
                        | {unexpected_code, kind(), byte()}.

-record(decoder, {head = <<>> :: binary(),
                  %% Chunks received after head, newest first.
                  tail = [] :: [binary()],
                  tail_bytes = 0 :: non_neg_integer(),
                  %% The next reply cannot be complete with fewer bytes.
                  need_bytes = 1 :: pos_integer()}).
-opaque decoder() :: #decoder{}.

%% ---------------------------------------------------------------- encode

-spec encode(request()) -> {ok, iodata()} | {error, too_big}.
encode({put, Key, Value}) when is_binary(Key), is_binary(Value) ->
    case fits(Key) andalso fits(Value) of
        true -> {ok, [<<?op_put, (byte_size(Key)):32>>, Key,
                      <<(byte_size(Value)):32>>, Value]};
        false -> {error, too_big}
    end;
encode({del, Key}) when is_binary(Key) ->
    encode_keyed(?op_del, Key);
encode({get, Key}) when is_binary(Key) ->
    encode_keyed(?op_get, Key);
encode(stats) ->
    {ok, <<?op_stats>>};
encode({auth, User, Password}) when is_binary(User), is_binary(Password) ->
    case fits(User) andalso fits(Password) of
        true -> {ok, [<<?op_auth, (byte_size(User)):32>>, User, <<(byte_size(Password)):32>>, Password]};
        false -> {error, too_big}
    end.

encode_keyed(Opcode, Key) ->
    case fits(Key) of
        true -> {ok, [<<Opcode, (byte_size(Key)):32>>, Key]};
        false -> {error, too_big}
    end.

fits(Bin) -> byte_size(Bin) =< ?field_bytes_max.

%% ---------------------------------------------------------------- decode

-spec decoder_new() -> decoder().
decoder_new() -> #decoder{}.

-spec decoder_feed(decoder(), binary()) -> decoder().
decoder_feed(D, <<>>) ->
    D;
decoder_feed(#decoder{tail = Tail, tail_bytes = TailBytes} = D, Data) when is_binary(Data) ->
    D#decoder{tail = [Data | Tail], tail_bytes = TailBytes + byte_size(Data)}.

-spec decoder_buffered_bytes(decoder()) -> non_neg_integer().
decoder_buffered_bytes(#decoder{head = Head, tail_bytes = TailBytes}) ->
    byte_size(Head) + TailBytes.

%% Takes the next reply, which answers a request of kind Kind, off the
%% buffered bytes.
-spec decoder_next(decoder(), kind()) ->
          {reply, reply(), decoder()} | {more, decoder()} | {error, protocol_error()}.
decoder_next(#decoder{need_bytes = Need} = D, Kind) ->
    case decoder_buffered_bytes(D) >= Need of
        false -> {more, D};
        true ->
            Bin = flatten(D),
            case decode_one(Kind, Bin) of
                {reply, Reply, Rest} ->
                    {reply, Reply, #decoder{head = detach(Rest)}};
                {more, NeedBytes} ->
                    ?assert(NeedBytes > byte_size(Bin)),
                    {more, #decoder{head = Bin, need_bytes = NeedBytes}};
                {error, _} = Error ->
                    Error
            end
    end.

flatten(#decoder{head = Head, tail = []}) -> Head;
flatten(#decoder{head = Head, tail = Tail}) -> iolist_to_binary([Head | lists:reverse(Tail)]).

detach(Rest) ->
    case binary:referenced_byte_size(Rest) - byte_size(Rest) >= ?leftover_copy_bytes_min of
        true -> binary:copy(Rest);
        false -> Rest
    end.

%% One reply from the start of Bin, or how many bytes it needs at least.
decode_one(_Kind, <<>>) ->
    {more, 1};
decode_one(Kind, <<?code_ok, Rest/binary>>) when Kind =:= put; Kind =:= del; Kind =:= auth ->
    {reply, ok, Rest};
%% Wrong credentials, or a daemon without --auth-file (for which 31 is an
%% unknown opcode and the rest of the frame more of them): either way the
%% caller closes the connection.
decode_one(auth, <<?code_einval, Rest/binary>>) ->
    {reply, {error, auth_refused}, Rest};
decode_one(Kind, <<?code_ok, Rest/binary>>) when Kind =:= get; Kind =:= stats ->
    case Rest of
        <<Len:32, Field:Len/binary, After/binary>> -> {reply, {ok, Field}, After};
        <<Len:32, _/binary>> -> {more, 1 + 4 + Len};
        _ -> {more, 1 + 4}
    end;
decode_one(Kind, <<?code_enotfound, Rest/binary>>) when Kind =:= get; Kind =:= del ->
    {reply, enotfound, Rest};
decode_one(Kind, <<?code_ebig, Rest/binary>>) when Kind =/= stats ->
    {reply, {error, too_big}, Rest};
decode_one(_Kind, <<?code_eunk, Rest/binary>>) ->
    {reply, {error, server_error}, Rest};
decode_one(Kind, <<?code_einval, _/binary>>) ->
    {error, {einval, Kind}};
decode_one(Kind, <<Code, _/binary>>) ->
    {error, {unexpected_code, Kind, Code}}.

%% ---------------------------------------------------------------- stats

%% STATS text is "NAME=value" pairs separated by single spaces. Pairs that
%% are not NAME=integer are left out rather than failing the whole reply:
%% a newer daemon may add fields of other kinds.
-spec parse_stats(binary()) -> #{binary() => integer()}.
parse_stats(Text) when is_binary(Text) ->
    maps:from_list(
      [{Name, Value} || Pair <- binary:split(Text, <<" ">>, [global, trim_all]),
                        {Name, Value} <- [parse_stats_pair(Pair)]]).

parse_stats_pair(Pair) ->
    case binary:split(Pair, <<"=">>) of
        [Name, ValueText] when Name =/= <<>> ->
            try binary_to_integer(ValueText) of
                Value -> {Name, Value}
            catch
                error:badarg -> skip
            end;
        _ -> skip
    end.
