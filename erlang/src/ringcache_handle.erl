%% The process behind one handle: it owns the handle's two ETS tables and
%% its connections, restarts a connection that crashes, and ends with the
%% process that called ringcache:start/1,2 (or at ringcache:stop/1).
%%
%% Not linked to its owner: a crash here must not take the user's process
%% down, and the owner's calls then get {error, unavailable}.
%%
%%   conns table (protected)  {{Group, Replica}, ConnPid}  read by callers
%%   keys table  (public)     {Key, Group}                 written by conns
-module(ringcache_handle).
-behaviour(gen_server).

-export([start/3, stop/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

%% Like a supervisor's intensity: past this many connection crashes within
%% the window the handle gives up rather than loop.
-define(conn_restarts_max, 10).
-define(conn_restart_window_ms, 10000).

-record(state, {owner :: reference(),
                conn_options :: ringcache_conn:options(),
                conns :: ets:tid(),
                keys :: ets:tid(),
                %% Connection pid -> where it sits and whom it talks to.
                slots = #{} :: #{pid() => {{pos_integer(), pos_integer()}, ringcache_addr:server()}},
                restarts = [] :: [integer()]}).

-spec start(pid(), [ringcache_addr:group(), ...], ringcache_conn:options()) ->
          {ok, pid(), ets:tid(), ets:tid()} | {error, term()}.
start(Owner, Groups, ConnOptions) ->
    case gen_server:start(?MODULE, {Owner, Groups, ConnOptions}, []) of
        {ok, Pid} ->
            {Conns, Keys} = gen_server:call(Pid, tables),
            {ok, Pid, Conns, Keys};
        {error, _} = Error ->
            Error
    end.

-spec stop(pid()) -> ok.
stop(Pid) ->
    try gen_server:stop(Pid)
    catch
        exit:_AlreadyGone -> ok
    end.

-spec init({pid(), [ringcache_addr:group(), ...], ringcache_conn:options()}) -> {ok, #state{}}.
init({Owner, Groups, ConnOptions}) ->
    process_flag(trap_exit, true),
    Conns = ets:new(ringcache_conns, [set, protected, {read_concurrency, true}]),
    Keys = ets:new(ringcache_keys, [set, public, {write_concurrency, true}]),
    S = #state{owner = monitor(process, Owner), conn_options = ConnOptions, conns = Conns, keys = Keys},
    Slots = [{{Group, Replica}, Server}
             || {Group, Replicas} <- lists:enumerate(Groups),
                {Replica, Server} <- lists:enumerate(Replicas)],
    {ok, lists:foldl(fun start_conn/2, S, Slots)}.

start_conn({{Group, _Replica} = Slot, Server},
           #state{conns = Conns, keys = Keys, slots = Slots, conn_options = ConnOptions} = S) ->
    {ok, Pid} = ringcache_conn:start_link(Server, Group, Keys, ConnOptions),
    true = ets:insert(Conns, {Slot, Pid}),
    S#state{slots = Slots#{Pid => {Slot, Server}}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(tables, _From, #state{conns = Conns, keys = Keys} = S) ->
    {reply, {Conns, Keys}, S};
handle_call(_Unknown, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Unknown, S) ->
    {noreply, S}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({'DOWN', Ref, process, _Owner, _Reason}, #state{owner = Ref} = S) ->
    {stop, normal, S};
handle_info({'EXIT', Pid, Reason}, #state{slots = Slots} = S) when is_map_key(Pid, Slots) ->
    {SlotServer, Slots1} = maps:take(Pid, Slots),
    restart_conn(Pid, Reason, SlotServer, S#state{slots = Slots1});
handle_info({'EXIT', _Other, _Reason}, S) ->
    {noreply, S};
handle_info(_Unknown, S) ->
    {noreply, S}.

restart_conn(Pid, Reason, {_Slot, #{name := Name}} = SlotServer, #state{restarts = Restarts} = S) ->
    Now = erlang:monotonic_time(millisecond),
    Recent = [T || T <- [Now | Restarts], Now - T < ?conn_restart_window_ms],
    case length(Recent) > ?conn_restarts_max of
        true ->
            ?LOG_ERROR("ringcache: connection to ~s keeps crashing (~p), closing the handle",
                         [Name, Reason]),
            {stop, {conn_restarts_exceeded, Reason}, S};
        false ->
            ?LOG_ERROR("ringcache: connection ~p to ~s crashed (~p), restarting",
                         [Pid, Name, Reason]),
            {noreply, start_conn(SlotServer, S#state{restarts = Recent})}
    end.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{slots = Slots}) ->
    [begin unlink(Pid), exit(Pid, shutdown) end || Pid <- maps:keys(Slots)],
    ok.
