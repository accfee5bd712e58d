%% The consistent-hashing properties the client promises (issue 5): a key
%% always maps to the same server whatever the list order, N servers each
%% get 1/N ± 10% of 100,000 keys for any addresses, and adding a server
%% moves about 1/(N+1) of the keys, all of them to the new server.
-module(ringcache_ring_tests).
-include_lib("eunit/include/eunit.hrl").

-define(key_count, 100000).
-define(share_tolerance, 0.10).
-define(server_counts, [2, 3, 4, 5, 7, 10, 16]).

%% Keys shaped like the client's: a 16-byte handle prefix, then the term.
keys() ->
    Prefix = <<16, 0:128>>,
    [<<Prefix/binary, (term_to_binary(I, [deterministic, {minor_version, 2}]))/binary>>
     || I <- lists:seq(1, ?key_count)].

random_names(N, Seed) ->
    rand:seed(exsss, Seed),
    [iolist_to_binary(io_lib:format("10.~b.~b.~b:~b", [rand:uniform(255), rand:uniform(255),
                                                      rand:uniform(255), rand:uniform(65535)]))
     || _ <- lists:seq(1, N)].

%% Names differing in one digit are where a weak hash shows.
sequential_names(N) ->
    [iolist_to_binary(["127.0.0.1:", integer_to_binary(8889 + I)]) || I <- lists:seq(0, N - 1)].

shares(Names, Keys) ->
    Ring = ringcache_ring:new(Names),
    Counts = lists:foldl(fun(Key, Acc) ->
                                 maps:update_with(ringcache_ring:lookup(Ring, Key), fun(C) -> C + 1 end, 1, Acc)
                         end, #{}, Keys),
    [maps:get(I, Counts, 0) / length(Keys) || I <- lists:seq(1, length(Names))].

assert_balanced(Names, Keys) ->
    N = length(Names),
    [?assert(abs(Share * N - 1) =< ?share_tolerance, {Name, Share, 1 / N})
     || {Name, Share} <- lists:zip(Names, shares(Names, Keys))].

balance_random_addresses_test_() ->
    {timeout, 60, fun() ->
        Keys = keys(),
        [assert_balanced(random_names(N, {N, Trial, 7}), Keys)
         || N <- ?server_counts, Trial <- [1, 2]]
    end}.

balance_sequential_ports_test_() ->
    {timeout, 60, fun() ->
        Keys = keys(),
        [assert_balanced(sequential_names(N), Keys) || N <- ?server_counts]
    end}.

balance_host_names_test() ->
    Names = [<<"cache-a.example:8889">>, <<"cache-b.example:8889">>, <<"cache-c.example:8889">>],
    assert_balanced(Names, keys()).

same_server_whatever_the_order_test() ->
    Names = random_names(5, {5, 5, 5}),
    Owner = fun(Ring, Ns, Key) -> lists:nth(ringcache_ring:lookup(Ring, Key), Ns) end,
    Reversed = lists:reverse(Names),
    Ring1 = ringcache_ring:new(Names),
    Ring2 = ringcache_ring:new(Reversed),
    Ring3 = ringcache_ring:new(Names),
    [begin
         ?assertEqual(Owner(Ring1, Names, Key), Owner(Ring2, Reversed, Key)),
         ?assertEqual(Owner(Ring1, Names, Key), Owner(Ring3, Names, Key))
     end || Key <- lists:sublist(keys(), 20000)].

adding_a_server_moves_its_share_only_to_it_test_() ->
    {timeout, 60, fun() ->
        Keys = keys(),
        [assert_growth(random_names(N + 1, {N, 11, 13}), Keys) || N <- [1, 2, 3, 5, 9]]
    end}.

assert_growth(NamesAfter, Keys) ->
    N = length(NamesAfter) - 1,
    NamesBefore = lists:sublist(NamesAfter, N),
    Before = ringcache_ring:new(NamesBefore),
    After = ringcache_ring:new(NamesAfter),
    Moved = [ringcache_ring:lookup(After, Key)
             || Key <- Keys, ringcache_ring:lookup(Before, Key) =/= ringcache_ring:lookup(After, Key)],
    ?assertEqual([], [Owner || Owner <- Moved, Owner =/= N + 1]),
    Fraction = length(Moved) / length(Keys),
    ?assert(abs(Fraction * (N + 1) - 1) =< ?share_tolerance, {N, Fraction, 1 / (N + 1)}).

removing_a_server_moves_only_its_keys_test() ->
    Names = random_names(4, {4, 4, 4}),
    Keys = lists:sublist(keys(), 20000),
    Full = ringcache_ring:new(Names),
    Gone = lists:nth(2, Names),
    Rest = Names -- [Gone],
    Smaller = ringcache_ring:new(Rest),
    [case lists:nth(ringcache_ring:lookup(Full, Key), Names) of
         Gone -> ok;
         Owner -> ?assertEqual(Owner, lists:nth(ringcache_ring:lookup(Smaller, Key), Rest))
     end || Key <- Keys].

one_server_takes_everything_test() ->
    Ring = ringcache_ring:new([<<"h:1">>]),
    ?assertEqual([1], lists:usort([ringcache_ring:lookup(Ring, Key) || Key <- lists:sublist(keys(), 1000)])).

server_count_test() ->
    ?assertEqual(3, ringcache_ring:server_count(ringcache_ring:new([<<"a:1">>, <<"b:1">>, <<"c:1">>]))).

%% Golden values: the key hash must not change between Erlang releases, or
%% clients on different nodes sharing a namespace would disagree on the
%% server of a key.
key_hash_is_pinned_test() ->
    ?assertEqual(1752076065, ringcache_ring:key_hash(<<"ringcache">>)),
    ?assertEqual(3449463512, ringcache_ring:key_hash(<<16, 0:128, 131, 97, 1>>)).
