"""A sweep as one SLURM array job: cluster profiles (``config/cluster.yaml``), the
``sweep_array.sbatch`` template and its rendering, ``submit``, and ``local``, the twin of
``sbatch --array`` that runs the same script's tasks on this machine."""
