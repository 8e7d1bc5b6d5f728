"""The Train tab's sweep choice: instead of one run, a hyperparameter search over the form's settings.

The user picks "sweep", the number of trials (and how many at once, and how hopeless trials are
stopped), and ticks which settings to search among the default space of the task and method
(``studio.sweeps.space.default_space``, each shown with its range); the ranges of the ticked ones
are a YAML text to edit. The estimate counts the searched epochs and the pruner's early stops. The launch
goes through the same code as ``studio sweep`` (``create_sweep``, then the server's driver thread)
and shows the Sweeps tab with the new sweep.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr
import yaml

from studio.errors import ConfigError, StudioError
from studio.ui import i18n
from studio.ui.common import duration, error_html, messages_html
from studio.ui.i18n import t
from studio.ui.markup import t_md
from studio.ui.services import Services, username

SINGLE, SWEEP = "single", "sweep"

# A sweep was started: show the Sweeps tab (its refresh picks the sweep this page started).
SHOW_SWEEPS_JS = "(sweep)=>{if(sweep)document.querySelector('button[data-tab-id=sweeps]')?.click()}"


def range_text(param) -> str:
    """A searched setting's range as the check box shows it."""
    if param.choices is not None:
        return ", ".join(str(c) for c in param.choices)
    low, high = (int(param.low), int(param.high)) if param.integer else (f"{param.low:g}", f"{param.high:g}")
    return t("train.sweep_range_log", low=low, high=high) if param.log else t("train.sweep_range", low=low, high=high)


def space_text(checked: list[str], current: str | None, defaults: dict[str, dict[str, Any]]) -> str:
    """The YAML of the ticked settings: a range the user already edited stays, a newly ticked one
    comes with its default range (in the default space's order)."""
    try:
        edited = yaml.safe_load(current or "") or {}
    except yaml.YAMLError:
        edited = {}
    edited = edited if isinstance(edited, dict) else {}
    chosen = {key: edited.get(key, defaults[key]) for key in defaults if key in (checked or [])}
    return yaml.safe_dump(chosen, sort_keys=False) if chosen else ""


class SweepChoice:
    """The mode switch and the sweep's settings, built where the Train tab places them."""

    def __init__(self, services: Services):
        self.services = services
        self.mode = i18n.fixed_choices(gr.Radio([(t("train.mode_single"), SINGLE), (t("train.mode_sweep"), SWEEP)], value=SINGLE,
                                                label=t("train.mode"), info=t("train.mode_info"), elem_id="train-mode"))
        with gr.Column(visible=False, elem_id="train-sweep") as self.box:
            with gr.Row():
                self.trials = gr.Number(value=12, precision=0, minimum=1, label=t("sweeps.trials"), elem_id="train-sweep-trials")
                self.parallel = gr.Number(value=1, precision=0, minimum=1, label=t("sweeps.parallel"), elem_id="train-sweep-parallel")
                self.pruner = i18n.fixed_choices(gr.Dropdown(
                    [(t("sweeps.pruner_median"), "median"), (t("sweeps.pruner_halving"), "halving"), (t("sweeps.pruner_none"), "none")],
                    value="median", label=t("sweeps.pruner"), elem_id="train-sweep-pruner"))
            self.params = gr.CheckboxGroup(choices=[], value=[], label=t("train.sweep_params"), info=t("train.sweep_params_info"),
                                           elem_id="train-sweep-params")
            self.space = gr.Code(value="", language="yaml", label=t("sweeps.space"), interactive=True, elem_id="train-sweep-space")
            self.defaults = gr.State({})
            self.estimate = gr.Markdown("", elem_id="train-sweep-estimate")
        self.started = gr.Textbox(visible=False, elem_id="train-sweep-started")

    def launch_button(self) -> gr.Button:
        """The sweep's launch button, in the launch button's place while "sweep" is chosen."""
        self.launch = gr.Button(t("train.sweep_launch"), variant="primary", visible=False, elem_id="train-sweep-launch", scale=3)
        return self.launch

    # ---- handlers -------------------------------------------------------------------------------
    def wire(self, config_fn: Callable[..., Any], config_inputs: list, rows_fn: Callable[..., int | None], changes: list,
             single_launch: gr.Button, message) -> None:
        """``config_fn(*config_inputs)``: the form's run config (raising a refusal's error);
        ``rows_fn(*config_inputs)``: the training rows, for the estimate; ``changes``: the form's
        events after which the searched settings and the estimate follow."""
        services = self.services

        def mode_fn(mode):
            sweep = mode == SWEEP
            return gr.update(visible=sweep), gr.update(visible=sweep), gr.update(visible=not sweep)

        def space_fn(mode, checked, current, *inputs):
            """The default space of the form's settings: the check boxes (all ticked at first) and the YAML."""
            from studio.sweeps.driver import base_space
            from studio.sweeps.space import space_to_dict

            if mode != SWEEP:
                return gr.skip(), gr.skip(), gr.skip()
            try:
                found = base_space(services.jobs, config_fn(*inputs))
            except StudioError as error:  # the form is not ready yet (no data, no backbone): say why
                reason = t("train.sweep_params_not_yet", reason=str(error).splitlines()[0])
                return gr.update(choices=[], value=[], info=reason), "", {}
            defaults = space_to_dict(found)
            keep = [key for key in checked or [] if key in defaults] or list(defaults)
            choices = [(f"{key.rsplit('.', 1)[-1]}: {range_text(param)}", key) for key, param in found.items()]
            return (gr.update(choices=choices, value=keep, info=t("train.sweep_params_info")), space_text(keep, current, defaults),
                    defaults)

        def checked_fn(checked, current, defaults):
            return space_text(checked, current, defaults or {})

        def estimate_fn(mode, trials, parallel, pruner, space_yaml, *inputs):
            if mode != SWEEP:
                return gr.skip()
            return self.estimate_md(config_fn, rows_fn, inputs, trials, parallel, pruner, space_yaml)

        def start_fn(request: gr.Request, trials, parallel, pruner, text, *inputs):
            """Create the sweep (as ``studio sweep`` does) and let the server's driver run it."""
            from studio.sweeps.driver import create_sweep
            from studio.sweeps.space import parse_space
            from studio.ui import sweeps_tab

            try:
                try:
                    data = yaml.safe_load(text or "") or None
                except yaml.YAMLError as error:
                    raise ConfigError(t("sweeps.space_not_yaml", error=str(error))) from None
                if not data:
                    raise ConfigError(t("train.sweep_nothing_searched"))
                sweep_id = create_sweep(services.jobs, config_fn(*inputs), trials=int(trials or 1), space=parse_space(data),
                                        parallel=int(parallel or 1), pruner=pruner or "median", owner=username(request))
            except StudioError as error:
                return error_html(error), ""
            sweeps_tab.started(services, request, sweep_id)
            return messages_html([("ok", t("train.sweep_started", sweep=sweep_id, trials=int(trials or 1)))]), sweep_id

        space_inputs = [self.mode, self.params, self.space, *config_inputs]
        space_outputs = [self.params, self.space, self.defaults]
        estimate_inputs = [self.mode, self.trials, self.parallel, self.pruner, self.space, *config_inputs]
        # One chain from the mode's change: handlers of one trigger beside each other read the mode
        # before the page had settled it (they got "single" after a click on "sweep").
        self.mode.input(mode_fn, [self.mode], [self.box, self.launch, single_launch], api_visibility="private") \
            .then(space_fn, space_inputs, space_outputs, api_visibility="private") \
            .then(estimate_fn, estimate_inputs, [self.estimate], api_visibility="private")
        gr.on(changes, space_fn, space_inputs, space_outputs, api_visibility="private", trigger_mode="always_last")
        self.params.input(checked_fn, [self.params, self.space, self.defaults], [self.space], api_visibility="private") \
            .then(estimate_fn, estimate_inputs, [self.estimate], api_visibility="private")
        gr.on([self.trials.input, self.parallel.input, self.pruner.input, self.space.blur, *changes], estimate_fn,
              estimate_inputs, [self.estimate], api_visibility="private", trigger_mode="always_last")
        self.launch.click(start_fn, [self.trials, self.parallel, self.pruner, self.space, *config_inputs], [message, self.started],
                          api_name="train_sweep", concurrency_limit=2, concurrency_id="submit") \
            .then(None, [self.started], None, js=SHOW_SWEEPS_JS)

    def estimate_md(self, config_fn, rows_fn, inputs, trials, parallel, pruner, space_yaml) -> str:
        """The sweep's time (``studio.sweeps.plan``): its trials as the single run's plan, with the
        searched epochs and the pruner's early stops, and the ceiling beside it."""
        from studio.sweeps.plan import estimate_for
        from studio.ui.train_tab import span_text

        try:
            space = yaml.safe_load(space_yaml or "") or {}
        except yaml.YAMLError:
            space = {}
        trials, parallel = max(1, int(trials or 1)), max(1, int(parallel or 1))
        try:
            est = estimate_for(self.services.jobs, config_fn(*inputs), space if isinstance(space, dict) else {}, trials, parallel,
                               pruner or "median", rows_hint=rows_fn(*inputs))
        except StudioError as error:
            return t_md("train.estimate_not_yet", reason=str(error).splitlines()[0])
        if est is None:
            return t_md("train.sweep_estimate_unknown")
        text = t_md("train.sweep_estimate", trials=trials, rounds=est.rounds, span=span_text(est.low_s, est.high_s),
                    ceiling=duration(est.ceiling_s), single=span_text(*est.single_s))
        if parallel > est.slots:
            text += " " + t_md("train.sweep_estimate_slots", slots=est.slots)
        if pruner == "none":
            return text + " " + t_md("train.sweep_estimate_no_pruning")
        if pruner == "halving":
            return text + " " + t_md("train.sweep_estimate_halving")
        return text + " " + t_md("train.sweep_estimate_pruning")
