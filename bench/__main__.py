from bench.run import main

if __name__ == "__main__":  # not when a spawned minting process imports it
    raise SystemExit(main())
