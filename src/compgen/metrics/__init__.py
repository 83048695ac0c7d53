"""Pure measures on arrays and images: representation scores (DCI, MIG, readout R²), the excess
reconstruction loss and gap, and the kind-aware training fit. They know no task, run or file, so
tasks, training and analysis can all use them."""
