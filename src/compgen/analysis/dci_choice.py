"""Which DCI variant a study's tables and figures show (config `analysis.dci`).

Every run's scores.json holds all three; this only picks the score keys:

- `standard`: Eastwood & Williams, on standardised latents (`dci_*`);
- `neurips`: the NeurIPS 2022 code's form, dummy-padded, entropy base = latent size (`dci_paper_*`);
- `iclr`: the ICLR 2021 code's form, mean-centred latents only, no dummy targets (`dci_iclr_*`).
"""

from __future__ import annotations

DCI_PREFIXES = {"standard": "dci_", "neurips": "dci_paper_", "iclr": "dci_iclr_"}
DCI_LABELS = {"standard": "DCI", "neurips": "NeurIPS code's DCI", "iclr": "ICLR code's DCI"}
DCI_PARTS = ("disentanglement", "completeness", "informativeness")


def dci_key(variant: str, part: str = "disentanglement") -> str:
    """The scores.json key of `part` (disentanglement, completeness, informativeness) of `variant`."""
    if variant not in DCI_PREFIXES:
        raise ValueError(f"unknown DCI variant {variant!r}; allowed: {', '.join(DCI_PREFIXES)}")
    if part not in DCI_PARTS:
        raise ValueError(f"unknown DCI part {part!r}; allowed: {', '.join(DCI_PARTS)}")
    return DCI_PREFIXES[variant] + part
