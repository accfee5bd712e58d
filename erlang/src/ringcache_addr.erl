%% Server addresses as users write them (erlang/README.md), checked and normalised.
%%
%%   "host:port" | "host" (port 8889) | "[v6addr]:port" | {Host, Port}
%%   a list of those = replicas of one another, tried in order
%%
%% A string is itself a list, so a replica list is told apart by holding
%% no integers. Binaries are accepted wherever strings are.
-module(ringcache_addr).

-export([parse_servers/1, group_name/1]).
-export_type([server/0, group/0]).

-define(default_port, 8889).
-define(port_max, 65535).

-type server() :: #{host := inet:hostname() | inet:ip_address(),
                    port := inet:port_number(),
                    name := binary()}.
%% Replicas of one another, in the order requests try them.
-type group() :: [server(), ...].

-spec parse_servers(term()) -> {ok, [group(), ...]} | {error, term()}.
parse_servers([]) ->
    {error, no_servers};
parse_servers(Specs) when is_list(Specs) ->
    try
        Groups = [parse_group(Spec) || Spec <- Specs],
        Names = [Name || Group <- Groups, #{name := Name} <- Group],
        case Names -- lists:usort(Names) of
            [] -> {ok, Groups};
            [Duplicate | _] -> {error, {duplicate_server, Duplicate}}
        end
    catch
        throw:{bad_server, _} = Reason -> {error, Reason}
    end;
parse_servers(Other) ->
    {error, {bad_server, Other}}.

%% The name the ring hashes and status/1 prints for a group.
-spec group_name(group()) -> binary().
group_name(Group) ->
    iolist_to_binary(lists:join(<<"|">>, [Name || #{name := Name} <- Group])).

parse_group([First | _] = Replicas) when not is_integer(First) ->
    [parse_server(Replica) || Replica <- Replicas];
parse_group(Spec) ->
    [parse_server(Spec)].

parse_server({Host, Port} = Spec) ->
    case valid_port(Port) of
        true -> server(parse_host(Host, Spec), Port);
        false -> throw({bad_server, Spec})
    end;
parse_server(Spec) when is_list(Spec) ->
    parse_text(text(Spec, Spec), Spec);
parse_server(Spec) when is_binary(Spec) ->
    parse_text(Spec, Spec);
parse_server(Spec) ->
    throw({bad_server, Spec}).

parse_text(<<"[", Bracketed/binary>>, Spec) ->
    case binary:split(Bracketed, <<"]">>) of
        [Host, <<>>] -> server(parse_host(Host, Spec), ?default_port);
        [Host, <<":", PortText/binary>>] -> server(parse_host(Host, Spec), parse_port(PortText, Spec));
        _ -> throw({bad_server, Spec})
    end;
parse_text(Text, Spec) ->
    case binary:split(Text, <<":">>, [global]) of
        [Host] -> server(parse_host(Host, Spec), ?default_port);
        [Host, PortText] -> server(parse_host(Host, Spec), parse_port(PortText, Spec));
        _ -> throw({bad_server, Spec})
    end.

%% characters_to_binary/1 raises on some bad input and returns a tuple on
%% other bad input: both are the user's mistake, reported as such.
text(Chars, Spec) ->
    try unicode:characters_to_binary(Chars) of
        Bin when is_binary(Bin) -> Bin;
        _ -> throw({bad_server, Spec})
    catch
        error:badarg -> throw({bad_server, Spec})
    end.

parse_port(Text, Spec) ->
    try binary_to_integer(Text) of
        Port -> case valid_port(Port) of
                    true -> Port;
                    false -> throw({bad_server, Spec})
                end
    catch
        error:badarg -> throw({bad_server, Spec})
    end.

valid_port(Port) -> is_integer(Port) andalso Port >= 1 andalso Port =< ?port_max.

%% An address literal becomes a tuple; anything else stays a host name for
%% the resolver, tried again at every reconnect.
parse_host(Host, Spec) when is_tuple(Host) ->
    case inet:ntoa(Host) of
        {error, einval} -> throw({bad_server, Spec});
        _ -> Host
    end;
parse_host(Host, Spec) when is_atom(Host) ->
    parse_host(atom_to_binary(Host), Spec);
parse_host(Host, Spec) when is_list(Host) ->
    parse_host(text(Host, Spec), Spec);
parse_host(<<>>, Spec) ->
    throw({bad_server, Spec});
parse_host(Host, Spec) when is_binary(Host) ->
    HostString = binary_to_list(Host),
    case inet:parse_address(HostString) of
        {ok, Address} -> Address;
        {error, einval} ->
            case valid_hostname(Host) of
                true -> HostString;
                false -> throw({bad_server, Spec})
            end
    end;
parse_host(_Host, Spec) ->
    throw({bad_server, Spec}).

valid_hostname(Host) ->
    lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z)
                            orelse (C >= $0 andalso C =< $9) orelse C =:= $- orelse C =:= $.
              end, binary_to_list(Host)).

server(Host, Port) ->
    #{host => Host, port => Port, name => server_name(Host, Port)}.

server_name(Host, Port) when tuple_size(Host) =:= 8 ->
    iolist_to_binary(["[", inet:ntoa(Host), "]:", integer_to_binary(Port)]);
server_name(Host, Port) when is_tuple(Host) ->
    iolist_to_binary([inet:ntoa(Host), ":", integer_to_binary(Port)]);
server_name(Host, Port) ->
    iolist_to_binary([Host, ":", integer_to_binary(Port)]).
