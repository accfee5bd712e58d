%% Server lists as users write them (erlang/README.md): accepted forms normalise to
%% one name per server; everything else is refused with the offending
%% element, never a crash.
-module(ringcache_addr_tests).
-include_lib("eunit/include/eunit.hrl").

names(Specs) ->
    {ok, Groups} = ringcache_addr:parse_servers(Specs),
    [[Name || #{name := Name} <- Group] || Group <- Groups].

accepted_forms_test_() ->
    [?_assertEqual(Expected, names(Specs)) || {Specs, Expected} <- [
        {["h1:1234"], [[<<"h1:1234">>]]},
        {["cache-a.example"], [[<<"cache-a.example:8889">>]]},
        {[<<"10.0.0.1:5">>], [[<<"10.0.0.1:5">>]]},
        {[{"localhost", 7}], [[<<"localhost:7">>]]},
        {[{localhost, 7}], [[<<"localhost:7">>]]},
        {[{{127, 0, 0, 1}, 9}], [[<<"127.0.0.1:9">>]]},
        {["[::1]:11"], [[<<"[::1]:11">>]]},
        {["[::1]"], [[<<"[::1]:8889">>]]},
        {[{{0, 0, 0, 0, 0, 0, 0, 1}, 12}], [[<<"[::1]:12">>]]},
        {["a:1", ["b:2", {"c", 3}], "d"], [[<<"a:1">>], [<<"b:2">>, <<"c:3">>], [<<"d:8889">>]]}]].

literal_addresses_become_tuples_test() ->
    {ok, [[#{host := Host1, port := 5}], [#{host := Host2}]]} =
        ringcache_addr:parse_servers(["127.0.0.1:5", "localhost:6"]),
    ?assertEqual({127, 0, 0, 1}, Host1),
    ?assertEqual("localhost", Host2).

group_name_test() ->
    {ok, [Group]} = ringcache_addr:parse_servers([["a:1", "b:2"]]),
    ?assertEqual(<<"a:1|b:2">>, ringcache_addr:group_name(Group)).

refused_test_() ->
    [?_assertMatch({error, _}, ringcache_addr:parse_servers(Specs)) || Specs <- [
        [], "", not_a_list, ["h:0"], ["h:65536"], ["h:-1"], ["h:port"], ["h:"], [":1"],
        ["a:b:c"], ["[::1"], ["[::1]x"], [{"h", 0}], [{"h", "1"}], [{{999, 0, 0, 1}, 1}],
        [{"", 1}], [[]], [42], [{}], [["a:1", 42]], ["bad host:1"], ["h_1:1"],
        [<<255, 0>>], [[{a, b}, "c:1"]]]].

names_the_culprit_test_() ->
    [?_assertEqual({error, {bad_server, "h:0"}}, ringcache_addr:parse_servers(["a:1", "h:0"])),
     ?_assertEqual({error, {duplicate_server, <<"a:1">>}}, ringcache_addr:parse_servers(["a:1", {"a", 1}])),
     ?_assertEqual({error, {duplicate_server, <<"a:1">>}}, ringcache_addr:parse_servers([["a:1", "b:1"], "a:1"])),
     ?_assertEqual({error, no_servers}, ringcache_addr:parse_servers([]))].
