"""`toolbox play-ises` and `toolbox bench-ises`: deduction games with Information Set Entropy Search (Meng & Lucas,
CoG 2024): watch an agent play, get suggestions for a game played elsewhere, play yourself, benchmark agents."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

PANEL = "Deduction games (ISES)"
# The per-move table logged to TensorBoard / MLflow when a run closes: mean entropy and information per move.
TABLES = (StepTable("trajectory.csv", "t", ("game", "agent", "budget_ms")),)


def register(app: typer.Typer) -> None:
    app.command("play-ises", rich_help_panel=PANEL)(play_ises)
    app.command("bench-ises", rich_help_panel=PANEL)(bench_ises)


def play_ises(
    game: Annotated[Optional[str], typer.Argument(
        help="Game spec: mastermind, bulls-cows, wordle, jotto, number, coin, blackbox, guesswho; options as "
             "'mastermind:pegs=5,colors=8' or 'wordle:hard=true'; your own: 'file:game.toml' or "
             "'py:MODULE:FACTORY'; any spec takes ',prior=FILE' (secret,weight rows). 'list' shows the games.")]
    = None,
    agent: Annotated[Optional[str], typer.Option(
        "--agent", help="ises[:depth=2,beam=8] | ises-sampled[:states=256,actions=0] | "
                        "so-ismcts[:iterations=N|evaluations=N,c=0.7,rollout=random] | minimax | random | "
                        "optimal[:beam=0].")] = None,
    budget_ms: Annotated[Optional[float], typer.Option("--budget-ms", help="Per-move time budget (ms) of "
                                                       "ises-sampled and so-ismcts.")] = None,
    secret: Annotated[Optional[str], typer.Option("--secret", help="The hidden secret (default: drawn from "
                                                  "--seed).")] = None,
    first: Annotated[Optional[str], typer.Option("--first", help="Fixed first action, e.g. SALET.")] = None,
    all_secrets: Annotated[bool, typer.Option("--all", help="Play every secret; report the total and mean "
                                              "number of actions and the histogram.")] = False,
    assist: Annotated[bool, typer.Option("--assist", help="You play a real game elsewhere: type each action and "
                                         "its feedback, get the next suggestion.")] = False,
    human: Annotated[bool, typer.Option("--human", help="You play against a hidden secret in the terminal.")]
    = False,
    backend: Annotated[Optional[str], typer.Option("--backend", help="--all: serial | process (default) | ray; "
                                                   "the same episodes on every backend.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="--all: worker processes (0, the default: "
                                                   "the usable cores).")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Watch an agent deduce a secret move by move (action, feedback, |I|, H, information gained, best
    alternatives), or get suggestions (--assist), or play yourself (--human)."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.core.errors import UserInputError
        from toolbox.ises.games import make_game
        from toolbox.ises.pipeline import PlayConfig, build_agent, games_table, run_play
        from toolbox.ises.play import check_secret

        if game == "list":
            rows = games_table()
            session.table("deduction games", ["game", "|S|", "|A|", "|O|", "H0 bits", "kind", "about"],
                          [[r["game"], r.get("secrets", "-"), r.get("actions", "-"), r.get("outcomes", "-"),
                            r.get("H0_bits", "-"), r.get("kind", "-"), r.get("unavailable", r["about"])]
                           for r in rows])
            session.emit({"games": rows})
            return
        if assist and human:
            raise UserInputError("choose one of --assist and --human")
        explicit = {"game": game, "agent": agent, "budget_ms": budget_ms, "secret": secret, "first": first,
                    "all_secrets": all_secrets or None, "seed": seed, "backend": backend, "workers": workers}
        cfg = resolve(PlayConfig(), config, set_, explicit)
        dev = resolve_device(device)  # the information-set engine runs on the CPU
        if assist or human:
            _interactive(session, cfg, assist)
            return
        game_obj = make_game(cfg.game)  # bad specs fail before a run folder is created
        agent_obj = build_agent(game_obj, cfg)
        if cfg.secret:
            check_secret(game_obj, cfg.secret)
        folder = run_dir(out, "play-ises", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"play-ises run folder: {folder}  (device {dev}; the ISES engine runs on the CPU)")
        with session.progress("secrets") as update:
            doc = run_play(cfg, folder, log=session.info, agent=agent_obj,
                           progress=lambda done, total: update(done, total))
        if cfg.all_secrets:
            session.table(f"{doc['game']['game']} - {cfg.agent} over all {doc['secrets']} secrets",
                          ["total", "mean", "expected (prior)", "max", "win rate", "histogram", "seconds",
                           "backend"],
                          [[doc["total_actions"], f"{doc['mean_actions']:.5f}", f"{doc['expected_actions']:.5f}",
                            doc["max_actions"], doc["win_rate"], doc["histogram"], f"{doc['seconds']:.1f}",
                            f"{doc['backend']} x {doc['workers']}"]])
        else:
            session.table(f"{doc['game']['game']} - {cfg.agent}, secret {doc['secret']}",
                          ["t", "action", "feedback", "|I| before", "|I| after", "H after", "gained", "expected",
                           "best alternatives (expected gain)", "states x actions", "ms"],
                          [[s["step"], s["action"], s["feedback"], s["size_before"], s["size_after"], s["H_after"],
                            s["info_gained"], s["expected_gain"],
                            ", ".join(f"{a} {g:.3f}" for a, g in s["alternatives"][:3]),
                            f"{s['states_evaluated']} x {s['actions_evaluated']}", s["seconds"] * 1e3]
                           for s in doc["steps"]])
            verdict = "solved" if doc["solved"] else "not solved"
            session.info(f"{verdict} in {doc['actions']} actions"
                         + (f"; declared {doc['declared']}" if doc["declared"] else ""))
        session.emit({"out": str(folder), "device": dev, **doc})


def _interactive(session: Session, cfg, assist: bool) -> None:
    """--assist and --human: read lines from stdin; bad input is explained and the history is kept."""
    import numpy as np

    from toolbox.core.errors import UserInputError
    from toolbox.ises import engine
    from toolbox.ises.games import make_game
    from toolbox.ises.pipeline import build_agent
    from toolbox.ises.play import Assistant, check_secret, draw_secret

    game = make_game(cfg.game)
    helper = Assistant(game, build_agent(game, cfg), seed=cfg.seed)
    secret = None if assist else (check_secret(game, cfg.secret) if cfg.secret else draw_secret(game, cfg.seed))
    console = session.console
    console.print(f"{game.name}: {game.n_secrets} secrets, H0 = {game.entropy0():.3f} bits. Feedback format: "
                  f"{game.outcome_format}.")
    console.print("type 'ACTION = FEEDBACK' (or just FEEDBACK for the suggested action), 'undo', 'quit'" if assist
                  else "type an action, 'hint' for a suggestion, 'undo', 'quit'")
    done = False
    while not done:
        cand = helper.cand()
        h = engine.entropy_bits(cand, game.prior)
        suggestion = None
        if assist or not game.finished(cand):
            decision, _ = helper.suggest()
            suggestion = game.action_labels[decision.action]
            if assist:
                alts = ", ".join(f"{game.action_labels[a]} {g:.3f}" for a, g in decision.alternatives[:5])
                console.print(f"|I| = {len(cand)}, H = {h:.3f} bits. Suggest [bold]{suggestion}[/bold] "
                              f"(expected gain {decision.score:.3f} bits; alternatives: {alts})")
        line = sys.stdin.readline()
        if not line or line.strip().lower() in ("quit", "q", "exit"):
            break
        text = line.strip()
        if text.lower() == "undo":
            helper.undo()
            console.print(f"undone; {len(helper.history)} moves in the history")
            continue
        if not assist and text.lower() == "hint":
            console.print(f"hint: {suggestion}")
            continue
        try:
            if assist:
                action, _, feedback = text.rpartition("=")
                new = helper.record(action.strip() or suggestion, feedback)
            else:
                action = game.action_index(text)
                outcome = int(game.table[action, secret]) if game.table is not None else \
                    int(game.feedback(np.array([action]), np.array([secret]))[0, 0])
                new = helper.record(text, game.outcome_label(outcome))
                console.print(f"{game.action_labels[action]} -> [bold]{game.outcome_label(outcome)}[/bold]; "
                              f"|I| = {len(new)}, H = {engine.entropy_bits(new, game.prior):.3f} bits")
                if game.is_guess_game and outcome == game.win:
                    console.print(f"solved in {len(helper.history)} actions")
                    done = True
        except UserInputError as exc:
            console.print(f"[red]{exc}[/red]")
            continue
        if assist and len(new) == 1:
            console.print(f"the secret is {game.secret_labels[int(new[0])]}")
            done = game.is_guess_game and helper.history[-1][1] == game.win or not game.is_guess_game
        if not assist and game.finished(new):
            console.print(f"the secret is {game.secret_labels[secret]} (identified after {len(helper.history)} "
                          "queries)")
            done = True
    session.emit({"game": game.name, "history": [[game.action_labels[a], game.outcome_label(o)]
                                                 for a, o in helper.history],
                  "remaining": [game.secret_labels[int(s)] for s in helper.cand()[:20]],
                  "remaining_count": int(len(helper.cand()))})


def bench_ises(
    game: Annotated[Optional[list[str]], typer.Option("--game", help="Game spec (repeatable; default: the "
                                                      "eight games); also file:game.toml, py:MODULE:FACTORY, "
                                                      "',prior=FILE'.")] = None,
    agent: Annotated[Optional[list[str]], typer.Option("--agent", help="Agent spec (repeatable; default: "
                                                       "ises-sampled and so-ismcts).")] = None,
    budget_ms: Annotated[Optional[list[float]], typer.Option("--budget-ms", help="Per-move budget in ms "
                                                             "(repeatable; default 10 and 100).")] = None,
    n_games: Annotated[Optional[int], typer.Option("--n", help="Secrets per game (0: all secrets).")] = None,
    budget: Annotated[Optional[str], typer.Option("--budget", help="What is equal per move: time (--budget-ms) "
                                                  "or evaluations (feedback evaluations: what the ISES agent used "
                                                  "on the same secret and move, or --set evaluations=N).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="serial | process | ray.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Parallel workers (0: all cores).")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Agents x games x decision budgets over the same N secrets: win rate, mean/sd/max actions with 95% CI, time
    and evaluations per move, paired differences (t interval, d_z, rank-biserial, Wilcoxon p, Holm across games),
    histogram and entropy-trajectory plots (the game-design view)."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.ises.bench import run_label
        from toolbox.ises.pipeline import BenchIsesConfig, check_bench, run_bench

        explicit = {"games": game, "agents": agent, "budgets_ms": budget_ms, "n_games": n_games, "budget": budget,
                    "backend": backend, "workers": workers, "seed": seed}
        cfg = resolve(BenchIsesConfig(), config, set_, explicit)
        dev = resolve_device(device)
        check_bench(cfg)  # bad games, agents and budgets fail before a run folder is created
        folder = run_dir(out, "bench-ises", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"bench-ises run folder: {folder}  (device {dev}; the ISES engine runs on the CPU)")
        with session.progress("tasks") as update:
            doc = run_bench(cfg, folder, log=session.info, progress=lambda done, total: update(done, total))
        session.info(f"equal per move: {doc['budget']}")
        session.table("agents x games x budgets", ["game", "run", "n", "win rate", "mean actions", "95% CI", "sd",
                                                   "max", "expected (prior)", "ms/move", "evals/move"],
                      [[r["game"], run_label(r), r["n"], r["win_rate"], r["mean_actions"],
                        f"[{r['ci95_low']:.2f}, {r['ci95_high']:.2f}]", r["sd_actions"], r["max_actions"],
                        r["expected_actions"], r["ms_per_move"],
                        "-" if r["evals_per_move"] is None else f"{r['evals_per_move']:.4g}"] for r in doc["summary"]])
        session.table("paired differences in actions, a - b on the same secrets (95% t interval; Wilcoxon "
                      "signed-rank, zeros dropped; Holm across games)",
                      ["game", "run a", "run b", "n", "mean a", "mean b", "mean diff [95% CI]", "d_z", "r_rb",
                       "p (method)", "p Holm", "reject 5%"],
                      [[t["game"], t["run_a"], t["run_b"], t["n"], t["mean_a"], t["mean_b"],
                        f"{t['mean_diff']:.2f} [{t['ci95_low']:.2f}, {t['ci95_high']:.2f}]",
                        "-" if t["d_z"] is None else f"{t['d_z']:.2f}", f"{t['rank_biserial']:.2f}",
                        f"{t['p_value']:.3g} ({t['p_method']})", f"{t['p_holm']:.3g}", t["reject_05"]]
                       for t in doc["paired_tests"]])
        session.emit({"out": str(folder), "device": dev, **doc})
