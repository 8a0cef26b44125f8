"""A sweep as one SLURM array job: cluster profiles (``config/cluster.yaml``), the
``sweep_array.sbatch`` template and its rendering, ``submit``, and the launchers that run the
rendered script: ``sbatch``, and ``local``, its twin that runs the same script's tasks here."""
