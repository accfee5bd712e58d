%% status/1's percentages: rounded so they always add up to 100, each
%% within one point of the exact share.
-module(ringcache_status_tests).
-include_lib("eunit/include/eunit.hrl").

percentages_test_() ->
    [?_assertEqual(Expected, ringcache:percentages(Counts, lists:sum(Counts)))
     || {Counts, Expected} <- [
            {[0, 0, 0], [0, 0, 0]},
            {[1, 1, 1], [34, 33, 33]},
            {[2, 1], [67, 33]},
            {[20, 24, 13], [35, 42, 23]},
            {[5, 0], [100, 0]},
            {[1, 1, 1, 1, 1, 1, 1], [15, 15, 14, 14, 14, 14, 14]}]].

percentages_add_up_test() ->
    rand:seed(exsss, {3, 1, 4}),
    [begin
         Counts = [rand:uniform(1000) - 1 || _ <- lists:seq(1, rand:uniform(12))],
         Total = lists:sum(Counts),
         Percents = ringcache:percentages(Counts, Total),
         case Total of
             0 -> ?assertEqual([0 || _ <- Counts], Percents);
             _ ->
                 ?assertEqual(100, lists:sum(Percents)),
                 [?assert(abs(P - 100 * C / Total) < 1) || {P, C} <- lists:zip(Percents, Counts)]
         end
     end || _ <- lists:seq(1, 2000)].
