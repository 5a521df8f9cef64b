//! Long `--help` texts: the files `--data` expects, the schedule kinds with examples, and examples per
//! subcommand. Kept here so the option structs stay readable.

/// `--data`'s long help.
pub const DATA: &str = "Directory with the four MNIST IDX files, each raw or gzipped (NAME or NAME.gz):
  train-images-idx3-ubyte   training images (u8, N×28×28)
  train-labels-idx1-ubyte   training labels (u8, 0..=9)
  t10k-images-idx3-ubyte    test images
  t10k-labels-idx1-ubyte    test labels
(the names of the original distribution at yann.lecun.com / torchvision's MNIST/raw folder).
Default: the embedded subset (10,000 training and 2,000 test images).";

/// `--schedule`'s long help (train and schedule).
pub const SCHEDULE: &str = "Learning-rate schedule: JSON text or @FILE (docs/schedules.md section 6). Each kind \
takes PyTorch's parameter names in snake_case; omitted ones take PyTorch's defaults.
Kinds: constant, linear, step, multi_step, exponential, polynomial, multiplicative, cosine_annealing,
  cosine_annealing_warm_restarts, cyclic, one_cycle, reduce_lr_on_plateau, sequential, chained,
  cosine_with_warmup, inverse_sqrt, noam, warmup_cosine_decay, sgdr.
Examples:
  '{\"kind\":\"step\",\"step_size\":30,\"gamma\":0.1}'
  '{\"kind\":\"one_cycle\",\"max_lr\":0.1,\"total_steps\":1000}'
  '{\"kind\":\"sequential\",\"milestones\":[500],\"schedulers\":[{\"kind\":\"linear\",\"start_factor\":0.01,\
\"total_iters\":500},{\"kind\":\"cosine_annealing\",\"t_max\":9500}]}'
The schedule advances once per optimizer step; reduce_lr_on_plateau steps once per epoch on the validation loss
(--val-split) or the epoch's mean training loss.";

/// `--config`'s long help (train, lr-find, sweep, compare).
pub const CONFIG: &str = "Read options from FILE: TOML (.toml) or JSON (.json); any other name is tried as JSON, then
as TOML. Keys are the long option names without the dashes (batch-size or batch_size); values are numbers,
strings, and true/false for switches. schedule, model, param_groups, grid and random may be tables/objects or the
JSON text the command line takes; betas a list [B1, B2]. The command line wins over the file (also where it gives
an option that excludes the file's, as --random excludes grid). Relative paths are taken from the current
directory, as on the command line. An unknown key is an error.
Example (run.toml):
  lr = 0.05
  momentum = 0.9
  batch-size = 128
  schedule = { kind = \"cosine_annealing\", t_max = 1000 }";

pub const TRAIN_EXAMPLES: &str = "Examples:
  wgtrain train --epochs 3 --lr 0.05 --momentum 0.9 --save-weights cnn.safetensors
  wgtrain train --data ~/mnist --batch-size 128 --val-split 5000 --metrics run.jsonl \\
      --schedule '{\"kind\":\"one_cycle\",\"max_lr\":0.1,\"total_steps\":1400}'
  wgtrain train --backend cpu --limit-train 2000 --steps 100 --no-eval -q
  wgtrain train --config run.toml --lr 0.1        # the file's options, with the lr from the command line

Output: a progress bar on a terminal (one kept line per epoch), one line per epoch (and one every --log-every
seconds) when stderr is not a terminal, nothing with -q; the summary line on stdout. Every output path is
checked before training starts.";

pub const COMPARE_EXAMPLES: &str = "Examples:
  wgtrain compare
  wgtrain compare --backends cpu,vulkan --steps 100 --batch-size 128 --json compare.json
  wgtrain compare --backends all --limit-train 2000 --plot compare.svg";

pub const SCHEDULE_EXAMPLES: &str = "Examples:
  wgtrain schedule --schedule '{\"kind\":\"cosine_annealing\",\"t_max\":100}' --lr 0.1 --steps 100
  wgtrain schedule --schedule @sched.json --lr 0.1 --momentum 0.9 --steps 5000 --plot sched.svg
  wgtrain schedule --schedule '{\"kind\":\"reduce_lr_on_plateau\",\"patience\":2}' --lr 0.1 --steps 6 \\
      --metrics-values 1,0.9,0.9,0.9,0.9,0.9";

pub const DEVICES_EXAMPLES: &str = "Examples:
  wgtrain devices
  wgtrain devices --adapter nvidia
  RUST_LOG=wgpu_hal=info wgtrain devices     # also show the drivers' own messages while probing";
