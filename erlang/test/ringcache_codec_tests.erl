%% Golden bytes for every request and reply of docs/binary_protocol.md, each reply decoded
%% whole, split at every byte, byte by byte, and inside pipelined streams
%% cut into chunks of many sizes.
-module(ringcache_codec_tests).
-include_lib("eunit/include/eunit.hrl").

-define(chunk_sizes, [1, 2, 5, 10, 100, 1000, 100000]).

%% ---------------------------------------------------------------- requests

request_golden_test_() ->
    [?_assertEqual(Bytes, encode(Request)) || {Request, Bytes} <- [
        {{put, <<"k">>, <<"val">>}, <<11, 0, 0, 0, 1, "k", 0, 0, 0, 3, "val">>},
        {{put, <<>>, <<>>}, <<11, 0, 0, 0, 0, 0, 0, 0, 0>>},
        {{put, <<0, 255>>, <<13>>}, <<11, 0, 0, 0, 2, 0, 255, 0, 0, 0, 1, 13>>},
        {{del, <<"key">>}, <<12, 0, 0, 0, 3, "key">>},
        {{del, <<>>}, <<12, 0, 0, 0, 0>>},
        {{get, <<"key">>}, <<13, 0, 0, 0, 3, "key">>},
        {{get, <<>>}, <<13, 0, 0, 0, 0>>},
        {stats, <<21>>}]].

auth_request_and_replies_test() ->
    {ok, Frame} = ringcache_codec:encode({auth, <<"alice">>, <<"pw">>}),
    ?assertEqual(<<31, 5:32, "alice", 2:32, "pw">>, iolist_to_binary(Frame)),
    D = ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), <<101, 111>>),
    {reply, ok, D1} = ringcache_codec:decoder_next(D, auth),
    ?assertMatch({reply, {error, auth_refused}, _}, ringcache_codec:decoder_next(D1, auth)),
    %% For any other request EINVAL still means the stream is lost.
    D2 = ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), <<111>>),
    ?assertEqual({error, {einval, get}}, ringcache_codec:decoder_next(D2, get)).

request_length_is_big_endian_test() ->
    Value = binary:copy(<<"x">>, 16#010203),
    ?assertMatch(<<11, 0, 0, 0, 1, "k", 0, 1, 2, 3, _/binary>>, encode({put, <<"k">>, Value})).

encode(Request) ->
    {ok, IoData} = ringcache_codec:encode(Request),
    iolist_to_binary(IoData).

%% ---------------------------------------------------------------- replies

%% {Kind, bytes on the wire, decoded reply}
golden_replies() ->
    Stats = <<"PUTS=1 DELS=2 GETS=3 KEYS=4">>,
    [{put, <<101>>, ok},
     {put, <<114>>, {error, too_big}},
     {put, <<115>>, {error, server_error}},
     {del, <<101>>, ok},
     {del, <<112>>, enotfound},
     {del, <<114>>, {error, too_big}},
     {get, <<101, 0, 0, 0, 3, "abc">>, {ok, <<"abc">>}},
     {get, <<101, 0, 0, 0, 0>>, {ok, <<>>}},
     {get, <<101, 0, 0, 0, 2, 101, 112>>, {ok, <<101, 112>>}},
     {get, <<112>>, enotfound},
     {get, <<114>>, {error, too_big}},
     {get, <<115>>, {error, server_error}},
     {stats, <<101, (byte_size(Stats)):32, Stats/binary>>, {ok, Stats}}].

reply_golden_whole_test_() ->
    [?_assertEqual({Reply, <<>>}, decode_all_at_once(Kind, Bytes))
     || {Kind, Bytes, Reply} <- golden_replies()].

reply_golden_split_at_every_byte_test_() ->
    [{lists:flatten(io_lib:format("~p ~p split at ~b", [Kind, Bytes, At])),
      ?_assertEqual(Reply, decode_split(Kind, Bytes, At))}
     || {Kind, Bytes, Reply} <- golden_replies(), At <- lists:seq(0, byte_size(Bytes))].

reply_golden_byte_by_byte_test_() ->
    [?_assertEqual([Reply], decode_stream([Kind], Bytes, 1))
     || {Kind, Bytes, Reply} <- golden_replies()].

decode_all_at_once(Kind, Bytes) ->
    D = ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), Bytes),
    {reply, Reply, D1} = ringcache_codec:decoder_next(D, Kind),
    {Reply, leftover(D1)}.

%% The first At bytes must not yield a reply; with the rest they must, and
%% nothing may be left over.
decode_split(Kind, Bytes, At) ->
    <<First:At/binary, Second/binary>> = Bytes,
    D0 = ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), First),
    D1 = case At < byte_size(Bytes) of
             true -> {more, D} = ringcache_codec:decoder_next(D0, Kind), D;
             false -> D0
         end,
    {reply, Reply, D2} = ringcache_codec:decoder_next(ringcache_codec:decoder_feed(D1, Second), Kind),
    <<>> = leftover(D2),
    Reply.

leftover(D) ->
    0 = ringcache_codec:decoder_buffered_bytes(D),
    <<>>.

%% Feeds Bytes in chunks of ChunkSize, taking every complete reply after
%% each chunk, as the connection process does.
decode_stream(Kinds, Bytes, ChunkSize) ->
    Chunks = chunks(Bytes, ChunkSize),
    {Replies, [], D} = lists:foldl(fun(Chunk, {Acc, Left, D}) ->
                                           take(ringcache_codec:decoder_feed(D, Chunk), Left, Acc)
                                   end, {[], Kinds, ringcache_codec:decoder_new()}, Chunks),
    ?assertEqual(0, ringcache_codec:decoder_buffered_bytes(D)),
    lists:reverse(Replies).

take(D, [], Acc) ->
    {Acc, [], D};
take(D, [Kind | Rest] = Kinds, Acc) ->
    case ringcache_codec:decoder_next(D, Kind) of
        {reply, Reply, D1} -> take(D1, Rest, [Reply | Acc]);
        {more, D1} -> {Acc, Kinds, D1}
    end.

chunks(Bytes, Size) when byte_size(Bytes) =< Size -> [Bytes];
chunks(Bytes, Size) ->
    <<Chunk:Size/binary, Rest/binary>> = Bytes,
    [Chunk | chunks(Rest, Size)].

pipelined_stream_in_every_chunk_size_test_() ->
    rand:seed(exsss, {1, 2, 3}),
    Golden = golden_replies(),
    Picks = [lists:nth(rand:uniform(length(Golden)), Golden) || _ <- lists:seq(1, 500)],
    Kinds = [Kind || {Kind, _, _} <- Picks],
    Stream = iolist_to_binary([Bytes || {_, Bytes, _} <- Picks]),
    Expected = [Reply || {_, _, Reply} <- Picks],
    [{integer_to_list(Size) ++ "-byte chunks", ?_assertEqual(Expected, decode_stream(Kinds, Stream, Size))}
     || Size <- ?chunk_sizes].

large_value_in_small_packets_test() ->
    Value = crypto:strong_rand_bytes(10 * 1024 * 1024 + 7),
    Bytes = <<101, (byte_size(Value)):32, Value/binary, 112>>,
    ?assertEqual([{ok, Value}, enotfound], decode_stream([get, del], Bytes, 65536)).

%% A reply that needs more bytes reports it without re-reading the buffer.
more_until_complete_test() ->
    D = ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), <<101, 0, 0, 1, 0>>),
    {more, D1} = ringcache_codec:decoder_next(D, get),
    {more, D2} = ringcache_codec:decoder_next(ringcache_codec:decoder_feed(D1, <<0:100/unit:8>>), get),
    {reply, {ok, Value}, D3} =
        ringcache_codec:decoder_next(ringcache_codec:decoder_feed(D2, <<1:156/unit:8>>), get),
    ?assertEqual(256, byte_size(Value)),
    ?assertEqual(0, ringcache_codec:decoder_buffered_bytes(D3)).

%% ---------------------------------------------------------------- bad replies

protocol_error_test_() ->
    [?_assertEqual({error, Error}, next(Kind, Bytes)) || {Kind, Bytes, Error} <- [
        {put, <<111>>, {einval, put}},
        {get, <<111, 101>>, {einval, get}},
        {get, <<113>>, {unexpected_code, get, 113}},
        {put, <<112>>, {unexpected_code, put, 112}},
        {stats, <<112>>, {unexpected_code, stats, 112}},
        {stats, <<114>>, {unexpected_code, stats, 114}},
        {del, <<0>>, {unexpected_code, del, 0}},
        {get, <<255, 1, 2>>, {unexpected_code, get, 255}},
        {put, <<200>>, {unexpected_code, put, 200}}]].

next(Kind, Bytes) ->
    ringcache_codec:decoder_next(ringcache_codec:decoder_feed(ringcache_codec:decoder_new(), Bytes), Kind).

%% ---------------------------------------------------------------- stats

parse_stats_test_() ->
    [?_assertEqual(#{<<"PUTS">> => 1, <<"DELS">> => 2, <<"GETS">> => 3, <<"KEYS">> => 4,
                     <<"LIMIT">> => 67108864},
                   ringcache_codec:parse_stats(<<"PUTS=1 DELS=2 GETS=3 KEYS=4 LIMIT=67108864">>)),
     ?_assertEqual(#{}, ringcache_codec:parse_stats(<<>>)),
     ?_assertEqual(#{<<"A">> => 18446744073709551615},
                   ringcache_codec:parse_stats(<<"A=18446744073709551615">>)),
     {"pairs that are not NAME=integer are skipped",
      ?_assertEqual(#{<<"A">> => 1, <<"C">> => 3},
                    ringcache_codec:parse_stats(<<"A=1 B=x C=3 =4 D E=">>))}].
