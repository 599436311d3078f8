"""Command line: python -m train [--notebook PATH] [--name NAME] ..."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import bentoml

from train import environment
from train.checks import parse_gates
from train.comparison import SKIP
from train.errors import Stopped, TrainingError
from train.pipeline import DEFAULT_GATES, TrainOptions, train

logger = logging.getLogger("train")


def parse_args(argv: list[str] | None = None) -> TrainOptions:
    """Turn command-line flags into TrainOptions."""
    defaults = TrainOptions()
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Execute a notebook with nbclient, check the classifier it fits, "
        "and save it to the BentoML model store.",
    )
    parser.add_argument(
        "--notebook", type=Path, default=defaults.notebook, help="notebook to execute (default: %(default)s)"
    )
    parser.add_argument(
        "--name", default=defaults.name, help="model name in the store (default: the notebook's name + _clf)"
    )
    parser.add_argument("--model-var", default=defaults.model_var, help="kernel variable holding the fitted classifier")
    parser.add_argument(
        "--x-train-var", default=defaults.x_train_var, help="kernel variable holding the training features"
    )
    parser.add_argument(
        "--y-train-var", default=defaults.y_train_var, help="kernel variable holding the training labels"
    )
    parser.add_argument("--x-test-var", default=defaults.x_test_var, help="kernel variable holding the test features")
    parser.add_argument("--y-test-var", default=defaults.y_test_var, help="kernel variable holding the test labels")
    parser.add_argument(
        "--preprocessor-var",
        default=None,
        help="kernel variable holding a preprocessor fitted apart from the model (e.g. a DictVectorizer); "
        "the X variables then name the raw frames",
    )
    parser.add_argument(
        "--card-var",
        default=defaults.card_var,
        help="kernel variable with the notebook's title, feature descriptions and gate (default: %(default)s)",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=None,
        help="the notebook's own packages, in pip's syntax (default: a requirements.txt beside the notebook, if "
        "there is one), installed into an environment of the notebook's own",
    )
    parser.add_argument(
        "--label-encoder-var",
        default=defaults.label_encoder_var,
        help="kernel variable with the encoder the labels were coded with (e.g. a LabelEncoder, as XGBoost needs "
        "codes 0..k-1): the service answers the decoded class names (default: %(default)s, if defined)",
    )
    parser.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="refuse to save unless the test METRIC reaches VALUE (repeatable; metrics: accuracy, "
        "balanced_accuracy, f1_macro, roc_auc; log_loss is a maximum). Replaces the notebook's gate. "
        f"Without any gate: {', '.join(f'{k}={v}' for k, v in DEFAULT_GATES.items())}",
    )
    parser.add_argument("--min-accuracy", type=float, default=None, help="the same as --gate accuracy=VALUE")
    parser.add_argument(
        "--gate-vs",
        default=None,
        metavar="TAG",
        help="refuse to save unless the model scores about as well as the stored model TAG on the new test rows, "
        "by the first gate's metric (default: NAME:latest when stored; 'none' compares with nothing)",
    )
    parser.add_argument(
        "--gate-vs-margin",
        type=float,
        default=defaults.gate_vs_margin,
        metavar="AMOUNT",
        help="how much worse than the --gate-vs model the new one may score, absolute (default: %(default)s)",
    )
    parser.add_argument(
        "--limit-factor",
        type=float,
        default=defaults.limit_factor,
        help="numbers are accepted up to this many training ranges below the minimum and above the maximum "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--no-onnx",
        dest="compile_onnx",
        action="store_false",
        help="serve with scikit-learn, skip the ONNX compilation",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=defaults.output_dir,
        help="where the executed notebook is written (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=int, default=defaults.timeout, help="seconds a single cell may run (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"--notebook {args.notebook} does not exist")
    try:
        gates = parse_gates(args.gate)
    except ValueError as error:
        parser.error(str(error))
    if args.min_accuracy is not None:
        gates["accuracy"] = args.min_accuracy
    if args.gate_vs is not None and args.gate_vs.lower() != SKIP:
        try:
            bentoml.Tag.from_taglike(args.gate_vs)
        except ValueError as error:
            parser.error(f"--gate-vs {args.gate_vs!r} is not a model tag (NAME:VERSION, or none): {error}")
    if args.gate_vs_margin < 0:
        parser.error(f"--gate-vs-margin {args.gate_vs_margin} is negative: give how much worse is allowed, e.g. 0.01")
    if args.requirements is not None and not args.requirements.is_file():
        parser.error(f"--requirements {args.requirements} does not exist")
    options = {k: v for k, v in vars(args).items() if k not in ("gate", "min_accuracy")}
    result = TrainOptions(**options, gates=gates)
    try:
        bentoml.Tag.from_taglike(result.model_name)
    except ValueError as error:
        parser.error(f"model name {result.model_name!r} is not valid (use --name): {error}")
    return result


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception, so the kernel is shut down and no half-saved model is kept."""
    raise Stopped(f"Training was stopped by {signal.Signals(signum).name} before it finished.")


def main(argv: list[str] | None = None) -> int:
    """Train and print the new model tag; return the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = parse_args(argv)
    requirements = environment.requirements_for(options.notebook, options.requirements)
    if requirements is not None and environment.current() is None:
        try:
            made = environment.prepare(requirements)
        except TrainingError as error:
            logger.error("Training failed, nothing was saved to the model store.\n%s", error)
            return error.exit_code
        return environment.run_inside(made, argv)
    # By default SIGTERM ends Python at once: no `finally`, so the notebook's kernel would be left running.
    signal.signal(signal.SIGTERM, _stop)
    try:
        tag = train(options)
    except KeyboardInterrupt:
        logger.error("Training was interrupted (Ctrl+C); nothing was saved to the model store.")
        return 128 + signal.SIGINT
    except TrainingError as error:
        logger.error("Training failed, nothing was saved to the model store.\n%s", error)
        return error.exit_code
    sys.stdout.write(f"{tag}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
