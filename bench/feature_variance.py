"""How much of each feature modality's variance its first principal components keep: what
``feature_width`` (model/inputs.py ``principal_components``) would drop on a graph.

    python bench/feature_variance.py --graph mkg-y --source ../shared/datasets/mkg-y \
        --text-encoder minilm --widths 32,64,128,256
"""

from __future__ import annotations

import argparse

import torch

from roam_graph.cli._options import add_config_flags, add_graph_flag
from roam_graph.graph.prepare import PrepareOptions, prepare_graph
from roam_graph.model.inputs import principal_components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_flag(parser, default="mkg-y")
    add_config_flags(parser, "--source", "--data-dir", "--text-encoder")
    parser.add_argument("--widths", default="32,64,128,256", help="comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = PrepareOptions(args.graph, args.source, args.data_dir,
                             text_encoder=args.text_encoder or "none")
    kg = prepare_graph(options).kg
    for name, modality in kg.modalities.items():
        for width in (int(w) for w in args.widths.split(",")):
            if width >= modality.values.shape[1]:
                continue
            _, kept = principal_components(modality.values.float(), modality.present, width)
            print(f"{args.graph} {name} ({modality.values.shape[1]}-d, "
                  f"{int(modality.present.sum())} entities): {width} components keep "
                  f"{100 * kept:.1f}% of the variance")


if __name__ == "__main__":
    main()
